-- Second chances: one application per student, program and term counts the
-- live ones only. live is false once the application was rejected (by the
-- school or the bureau) or withdrawn, all final states, so it changes once
-- in an application's life. A partial index on status would make every
-- status update touch an index predicate column and lose HOT updates (the
-- table keeps fillfactor room for them); live changes once.
ALTER TABLE applications ADD COLUMN live boolean NOT NULL DEFAULT true;
UPDATE applications SET live = false WHERE status IN ('SCHOOL_REJECTED', 'BUREAU_REJECTED', 'WITHDRAWN');
CREATE UNIQUE INDEX applications_one_live_per_student_program_term
  ON applications (student_id_hash, program_code, term) WHERE live;
ALTER TABLE applications DROP CONSTRAINT applications_student_program_term;

-- Payee corrections: a new bank card entered by a school's aid officer after
-- a bank return, waiting for a school reviewer's approval (four eyes). The
-- new card is sealed here until the decision and erased after it; masked
-- numbers and keyed fingerprints of the old and the new card stay.
CREATE TABLE payee_corrections (
  id                             uuid        PRIMARY KEY,
  application_id                 uuid        NOT NULL REFERENCES applications (id),
  state                          text        NOT NULL CHECK (state IN ('PENDING', 'APPROVED', 'REJECTED')),
  bank_card_masked               text        NOT NULL,
  bank_card_fingerprint          text        NOT NULL,
  previous_bank_card_masked      text        NOT NULL,
  previous_bank_card_fingerprint text        NOT NULL,
  bank_card_sealed               bytea       NOT NULL,
  account_name_sealed            bytea       NOT NULL,
  entered_by                     text        NOT NULL,
  entered_role                   text        NOT NULL,
  entered_org                    text        NOT NULL,
  entered_at                     timestamptz NOT NULL,
  decided_by                     text        NOT NULL DEFAULT '',
  decided_role                   text        NOT NULL DEFAULT '',
  decided_org                    text        NOT NULL DEFAULT '',
  decided_at                     timestamptz,
  reason                         text        NOT NULL DEFAULT '',
  CHECK ((state = 'PENDING') = (decided_at IS NULL))
);
-- At most one pending correction per application.
CREATE UNIQUE INDEX payee_corrections_one_pending ON payee_corrections (application_id) WHERE state = 'PENDING';
CREATE INDEX payee_corrections_application ON payee_corrections (application_id);

-- Reads of unmasked personal data: who (user, role, organisation), when,
-- which applications, through which use case and for what stated purpose.
-- One row per call. Insert-only: the trigger refuses updates, deletes and
-- truncation (the service's database role is granted INSERT and SELECT).
CREATE TABLE pii_reads (
  id              bigserial   PRIMARY KEY,
  at              timestamptz NOT NULL,
  user_id         text        NOT NULL,
  role            text        NOT NULL,
  org             text        NOT NULL,
  use_case        text        NOT NULL,
  purpose         text        NOT NULL,
  application_ids uuid[]      NOT NULL,
  trace_id        text        NOT NULL DEFAULT ''
);
CREATE INDEX pii_reads_user ON pii_reads (user_id, at);
-- Who read application X: application_ids @> ARRAY[X].
CREATE INDEX pii_reads_applications ON pii_reads USING gin (application_ids);

CREATE FUNCTION pii_reads_insert_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the record of personal data reads is insert-only (% refused)', TG_OP;
END;
$$;
CREATE TRIGGER pii_reads_no_update BEFORE UPDATE OR DELETE ON pii_reads
  FOR EACH ROW EXECUTE FUNCTION pii_reads_insert_only();
CREATE TRIGGER pii_reads_no_truncate BEFORE TRUNCATE ON pii_reads
  FOR EACH STATEMENT EXECUTE FUNCTION pii_reads_insert_only();
