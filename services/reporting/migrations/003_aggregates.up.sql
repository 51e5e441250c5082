-- Pre-aggregated figures (issue 14's speed targets). The consumer keeps
-- them in the same transaction as the payment or refund receipt it records
-- (adapters/aggregates.go); rebuild_aggregates() below computes the same
-- tables from the rows, fills them for an existing database, and is what
-- the benchmark calls after generating rows set-based. docs/reporting.md
-- explains how an answer as of an earlier instant stays exact.

-- paid_groups: payments grouped by everything a selection filters on and
-- everything the funding split depends on: the split floors each share of
-- each payment, so payments are grouped by their net amount (paid minus
-- recovered) and a receipt moves its payment from one group to another.
CREATE TABLE paid_groups (
  term_rank        integer NOT NULL,
  program_code     text NOT NULL,
  school_code      text NOT NULL,
  stage            text NOT NULL,
  government_total boolean NOT NULL,
  loan             boolean NOT NULL,
  shares_bp        jsonb NOT NULL,
  net_fen          bigint NOT NULL,
  payments         bigint NOT NULL CHECK (payments >= 0),
  gross_fen        bigint NOT NULL,
  recovered_fen    bigint NOT NULL,
  PRIMARY KEY (term_rank, program_code, school_code, stage, government_total, loan, shares_bp, net_fen)
);

-- person_terms: per student and selection cell, the number of grant
-- payments (not loans) still paid after refunds. Distinct persons of any
-- selection are count(DISTINCT student_id_hash) over its rows with live > 0.
CREATE TABLE person_terms (
  term_rank        integer NOT NULL,
  program_code     text NOT NULL,
  school_code      text NOT NULL,
  stage            text NOT NULL,
  government_total boolean NOT NULL,
  student_id_hash  text NOT NULL,
  live             integer NOT NULL CHECK (live >= 0),
  PRIMARY KEY (term_rank, program_code, school_code, stage, government_total, student_id_hash)
);

-- person_years: per year (of the payment's term) and scope, a student's
-- grant payments still paid; scope is 'all', 'government' or
-- 'program:<code>'. year_persons counts the students with live > 0, kept on
-- each 0 ↔ 1 crossing, so the annual report reads its persons in O(1).
CREATE TABLE person_years (
  year            integer NOT NULL,
  scope           text NOT NULL,
  student_id_hash text NOT NULL,
  live            integer NOT NULL CHECK (live >= 0),
  PRIMARY KEY (year, scope, student_id_hash)
);
CREATE TABLE year_persons (
  year    integer NOT NULL,
  scope   text NOT NULL,
  persons bigint NOT NULL CHECK (persons >= 0),
  PRIMARY KEY (year, scope)
);

-- What an answer as of an earlier instant needs to find the few students
-- whose rows changed after it, and the refunds and loan repayments read
-- from their rows.
CREATE INDEX payments_paid_at ON payments (paid_at);
CREATE INDEX refund_receipts_received_at ON refund_receipts (received_at);
CREATE INDEX applications_student ON applications (student_id_hash);
CREATE INDEX payments_loan_contract ON payments (loan_contract_number) WHERE loan_contract_number <> '';

-- payment_facts: each payment with its application's cells and all that
-- was recovered against it.
CREATE VIEW payment_facts AS
SELECT p.payment_id, a.term_rank, a.program_code, a.school_code, a.stage, a.government_total,
       p.loan_contract_number <> '' AS loan, a.shares_bp, a.student_id_hash, p.amount_fen,
       coalesce((SELECT sum(rr.amount_fen) FROM refunds r JOIN refund_receipts rr USING (refund_id)
                 WHERE r.payment_id = p.payment_id), 0)::bigint AS recovered_fen
FROM payments p JOIN applications a USING (application_id);

-- rebuild_aggregates replaces the aggregates by those computed from the
-- rows: the backfill of an existing database, and the reference the
-- consumer's incremental upkeep is tested against.
CREATE FUNCTION rebuild_aggregates() RETURNS void LANGUAGE sql SET search_path FROM CURRENT AS $$
DELETE FROM paid_groups;
DELETE FROM person_terms;
DELETE FROM person_years;
DELETE FROM year_persons;
INSERT INTO paid_groups (term_rank, program_code, school_code, stage, government_total, loan, shares_bp, net_fen,
                         payments, gross_fen, recovered_fen)
SELECT term_rank, program_code, school_code, stage, government_total, loan, shares_bp, amount_fen - recovered_fen,
       count(*), sum(amount_fen), sum(recovered_fen)
FROM payment_facts GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
INSERT INTO person_terms (term_rank, program_code, school_code, stage, government_total, student_id_hash, live)
SELECT term_rank, program_code, school_code, stage, government_total, student_id_hash, count(*)
FROM payment_facts WHERE NOT loan AND amount_fen > recovered_fen GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO person_years (year, scope, student_id_hash, live)
SELECT term_rank / 2, s.scope, student_id_hash, sum(live)
FROM person_terms, LATERAL (VALUES ('all'), ('program:' || program_code), (CASE WHEN government_total THEN 'government' END)) s (scope)
WHERE s.scope IS NOT NULL GROUP BY 1, 2, 3;
INSERT INTO year_persons (year, scope, persons)
SELECT year, scope, count(*) FROM person_years WHERE live > 0 GROUP BY 1, 2;
$$;

SELECT rebuild_aggregates();
