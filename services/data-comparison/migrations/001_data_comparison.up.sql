-- The data office's own copy of what was applied for and paid, its reference
-- data, and the clues and refunds it works. No column holds a plaintext ID
-- number or name: persons are matched by keyed hashes (pii.Hasher) of their
-- normalised 18-character ID numbers.

-- imports are the files imported: each is one version of its kind and scope
-- ('' for the city-wide kinds, '<school>/<term>' for a roster, the source's
-- name for history). Only accepted files are recorded; a refused one leaves
-- nothing but an audit entry.
CREATE TABLE imports (
    id           bigserial PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('poverty_registry', 'key_persons', 'roster', 'deaths', 'history')),
    scope        text NOT NULL,
    version      int NOT NULL,
    rows         bigint NOT NULL,
    file_name    text NOT NULL,
    imported_by  text NOT NULL,
    imported_at  timestamptz NOT NULL,
    UNIQUE (kind, scope, version)
);

-- current_imports is the version of each kind and scope comparisons use.
CREATE VIEW current_imports AS
    SELECT DISTINCT ON (kind, scope) id, kind, scope, version
    FROM imports ORDER BY kind, scope, version DESC;

-- Reference rows. line is the file's line, so a clue can name the row.
CREATE TABLE registry_rows (
    import_id    bigint NOT NULL REFERENCES imports (id),
    line         bigint NOT NULL,
    id_hash      text NOT NULL,
    household_id text NOT NULL,
    name_hash    text NOT NULL,
    id_masked    text NOT NULL,
    township     text NOT NULL,
    PRIMARY KEY (import_id, line)
);
CREATE INDEX registry_rows_person ON registry_rows (id_hash, import_id);

CREATE TABLE key_person_rows (
    import_id    bigint NOT NULL REFERENCES imports (id),
    line         bigint NOT NULL,
    id_hash      text NOT NULL,
    name_hash    text NOT NULL,
    id_masked    text NOT NULL,
    relation     text NOT NULL,
    unit         text NOT NULL,
    PRIMARY KEY (import_id, line)
);
CREATE INDEX key_person_rows_person ON key_person_rows (id_hash, import_id);

CREATE TABLE roster_rows (
    import_id    bigint NOT NULL REFERENCES imports (id),
    line         bigint NOT NULL,
    id_hash      text NOT NULL,
    name_hash    text NOT NULL,
    id_masked    text NOT NULL,
    school_code  text NOT NULL,
    term         text NOT NULL,
    term_ord     int NOT NULL,
    stage        text NOT NULL,
    PRIMARY KEY (import_id, line)
);
CREATE INDEX roster_rows_person ON roster_rows (id_hash, import_id);

CREATE TABLE death_rows (
    import_id    bigint NOT NULL REFERENCES imports (id),
    line         bigint NOT NULL,
    id_hash      text NOT NULL,
    name_hash    text NOT NULL,
    id_masked    text NOT NULL,
    event_date   date NOT NULL,
    event_kind   text NOT NULL CHECK (event_kind IN ('death', 'deregistration')),
    PRIMARY KEY (import_id, line)
);
CREATE INDEX death_rows_person ON death_rows (id_hash, import_id);

-- records are what was applied for and paid: from the chain's events
-- (origin 'chain', id = the application ID) or imported history (origin
-- 'imported', never part of the payment chain). term_ord orders terms
-- (year*2, +1 for autumn); term_start is the day the term begins.
CREATE TABLE records (
    id              uuid PRIMARY KEY,
    origin          text NOT NULL CHECK (origin IN ('chain', 'imported')),
    import_id       bigint REFERENCES imports (id),
    line            bigint,
    student_id_hash text NOT NULL,
    student_id_masked text NOT NULL,
    school_code     text NOT NULL,
    program_code    text NOT NULL,
    term            text NOT NULL,
    term_ord        int NOT NULL,
    term_start      date NOT NULL,
    stage           text NOT NULL,
    hardship_level  text NOT NULL DEFAULT '',
    applied_fen     bigint NOT NULL,
    -- applied, rejected, paid, failed
    status          text NOT NULL CHECK (status IN ('applied', 'rejected', 'paid', 'failed')),
    paid_fen        bigint NOT NULL DEFAULT 0,
    payment_id      text NOT NULL DEFAULT '',
    updated_at      timestamptz NOT NULL,
    CHECK ((origin = 'imported') = (import_id IS NOT NULL))
);
CREATE INDEX records_paid_term ON records (term_ord) WHERE status = 'paid';
CREATE INDEX records_person ON records (student_id_hash, term_ord);

-- paid_records are the payments a comparison covers: the chain's paid
-- records and the current versions of imported history.
CREATE VIEW paid_records AS
    SELECT r.* FROM records r WHERE r.origin = 'chain' AND r.status = 'paid'
    UNION ALL
    SELECT r.* FROM records r JOIN current_imports c ON c.id = r.import_id WHERE r.origin = 'imported';

CREATE TABLE runs (
    id           bigserial PRIMARY KEY,
    from_term    text NOT NULL,
    to_term      text NOT NULL,
    records      bigint NOT NULL DEFAULT 0,
    new_clues    jsonb NOT NULL DEFAULT '{}',
    import_ids   bigint[] NOT NULL DEFAULT '{}',
    run_by       text NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz
);

-- clues are the problem clues (问题线索). natural_key makes a re-run add
-- nothing: kind plus what the clue is about (a record, or a person, program
-- and term). refs names the reference rows behind it as
-- [{"import_id":…, "kind":…, "version":…, "line":…}].
CREATE TABLE clues (
    id              uuid PRIMARY KEY,
    natural_key     text NOT NULL UNIQUE,
    kind            text NOT NULL,
    origin          text NOT NULL CHECK (origin IN ('comparison', 'manual')),
    run_id          bigint REFERENCES runs (id),
    status          text NOT NULL CHECK (status IN ('open', 'assigned', 'verified', 'dismissed')),
    student_id_hash text NOT NULL,
    student_id_masked text NOT NULL,
    school_code     text NOT NULL,
    program_code    text NOT NULL,
    term            text NOT NULL,
    amount_fen      bigint NOT NULL,
    detail          text NOT NULL,
    record_ids      uuid[] NOT NULL,
    refs            jsonb NOT NULL DEFAULT '[]',
    assignee        text NOT NULL DEFAULT '',
    findings        text NOT NULL DEFAULT '',
    evidence        text NOT NULL DEFAULT '',
    ineligible      boolean NOT NULL DEFAULT false,
    trail_length    bigint NOT NULL,
    trail_head      text NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX clues_list ON clues (created_at, id);
CREATE INDEX clues_status ON clues (status, kind);

-- clue_trail is each clue's hash-chained history (see domain.Chain).
CREATE TABLE clue_trail (
    clue_id     uuid NOT NULL REFERENCES clues (id),
    position    bigint NOT NULL,
    event_id    uuid NOT NULL UNIQUE,
    type        text NOT NULL,
    occurred_at timestamptz NOT NULL,
    actor_user  text NOT NULL,
    actor_role  text NOT NULL,
    actor_org   text NOT NULL,
    status      text NOT NULL,
    note        text NOT NULL,
    prev_hash   text NOT NULL,
    hash        text NOT NULL,
    PRIMARY KEY (clue_id, position)
);

-- refunds are receivables to recover ineligible payments: linked to the
-- original record, which is never edited.
CREATE TABLE refunds (
    id           uuid PRIMARY KEY,
    clue_id      uuid NOT NULL UNIQUE REFERENCES clues (id),
    record_id    uuid NOT NULL REFERENCES records (id),
    payment_id   text NOT NULL,
    school_code  text NOT NULL,
    program_code text NOT NULL,
    term         text NOT NULL,
    amount_fen   bigint NOT NULL CHECK (amount_fen > 0),
    received_fen bigint NOT NULL DEFAULT 0 CHECK (received_fen >= 0 AND received_fen <= amount_fen),
    status       text NOT NULL CHECK (status IN ('open', 'closed')),
    account      text NOT NULL,
    opened_at    timestamptz NOT NULL,
    closed_at    timestamptz,
    CHECK ((status = 'closed') = (received_fen = amount_fen))
);
CREATE INDEX refunds_list ON refunds (opened_at, id);

CREATE TABLE receipts (
    refund_id   uuid NOT NULL REFERENCES refunds (id),
    bank_ref    text NOT NULL UNIQUE,
    amount_fen  bigint NOT NULL CHECK (amount_fen > 0),
    account     text NOT NULL,
    received_at timestamptz NOT NULL,
    recorded_by text NOT NULL,
    recorded_at timestamptz NOT NULL
);
CREATE INDEX receipts_refund ON receipts (refund_id, recorded_at);
