-- Applications: one student's application for one program in one term.
-- Personal data is kept sealed (AES-GCM, *_sealed) and masked (*_masked);
-- the keyed hash of the ID number finds duplicates without the number.
CREATE TABLE applications (
  id                  uuid        PRIMARY KEY,
  school_code         text        NOT NULL,
  term                text        NOT NULL,
  program_code        text        NOT NULL,
  stage               text        NOT NULL,
  funding_source      text        NOT NULL,
  tiered              boolean     NOT NULL,
  boarding            boolean     NOT NULL,
  rural               boolean     NOT NULL,
  registered_poor     boolean     NOT NULL,
  student_id_hash     text        NOT NULL,
  student_id_masked   text        NOT NULL,
  student_id_sealed   bytea       NOT NULL,
  student_name_masked text        NOT NULL,
  student_name_sealed bytea       NOT NULL,
  bank_card_masked    text        NOT NULL,
  bank_card_sealed    bytea       NOT NULL,
  account_name_sealed bytea       NOT NULL,
  status              text        NOT NULL,
  amount_fen          bigint      NOT NULL CHECK (amount_fen >= 0),
  hardship_level      text        NOT NULL DEFAULT '',
  batch_id            text        NOT NULL DEFAULT '',
  payment_id          text        NOT NULL DEFAULT '',
  status_reason       text        NOT NULL DEFAULT '',
  submitted_by        text        NOT NULL,
  submitted_at        timestamptz NOT NULL,
  updated_at          timestamptz NOT NULL,
  -- The trail's length and last hash, so that entries deleted from the end
  -- of the trail are noticed too.
  trail_length        bigint      NOT NULL,
  trail_head          text        NOT NULL,
  -- One student gets a given program at most once per term, at one school.
  CONSTRAINT applications_student_program_term UNIQUE (student_id_hash, program_code, term)
)
-- Room on each page for status updates to stay HOT (no index writes).
WITH (fillfactor = 80);
-- Listings: newest first, per school or overall.
CREATE INDEX applications_school_newest ON applications (school_code, submitted_at DESC, id DESC);
CREATE INDEX applications_newest ON applications (submitted_at DESC, id DESC);

-- The trail: every event that changed an application, hash-chained.
-- Insert-only: the trigger below refuses updates, deletes and truncation.
CREATE TABLE trail (
  application_id uuid        NOT NULL REFERENCES applications (id),
  position       bigint      NOT NULL CHECK (position >= 1),
  event_id       uuid        NOT NULL,
  type           text        NOT NULL,
  occurred_at    timestamptz NOT NULL,
  actor_user_id  text        NOT NULL,
  actor_role     text        NOT NULL,
  actor_org      text        NOT NULL,
  status         text        NOT NULL,
  reason         text        NOT NULL,
  amount_fen     bigint      NOT NULL,
  batch_id       text        NOT NULL,
  prev_hash      text        NOT NULL,
  hash           text        NOT NULL,
  recorded_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (application_id, position),
  CONSTRAINT trail_event_once UNIQUE (application_id, event_id)
);

CREATE FUNCTION trail_insert_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the application trail is insert-only (% refused)', TG_OP;
END;
$$;
CREATE TRIGGER trail_no_update BEFORE UPDATE OR DELETE ON trail
  FOR EACH ROW EXECUTE FUNCTION trail_insert_only();
CREATE TRIGGER trail_no_truncate BEFORE TRUNCATE ON trail
  FOR EACH STATEMENT EXECUTE FUNCTION trail_insert_only();

-- Idempotency keys of submissions, per school: the request's SHA-256 and the
-- applications it created, so a retry gets the same answer.
CREATE TABLE idempotency_keys (
  school_code     text        NOT NULL,
  key             text        NOT NULL,
  request_hash    text        NOT NULL,
  application_ids uuid[]      NOT NULL DEFAULT '{}',
  created_by      text        NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (school_code, key)
);
