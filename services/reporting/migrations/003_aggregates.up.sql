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
  program_code     text NOT NULL,
  term_rank        integer NOT NULL,
  school_code      text NOT NULL,
  stage            text NOT NULL,
  government_total boolean NOT NULL,
  -- "C": distinct counting sorts these by bytes, not by the locale.
  student_id_hash  text COLLATE "C" NOT NULL,
  live             integer NOT NULL CHECK (live >= 0),
  PRIMARY KEY (program_code, term_rank, school_code, stage, government_total, student_id_hash)
);
-- A school set across programs, and one student's rows (period_persons'
-- upkeep).
CREATE INDEX person_terms_school ON person_terms (school_code, term_rank) INCLUDE (student_id_hash, government_total, program_code, stage, live);
CREATE INDEX person_terms_student ON person_terms (student_id_hash, term_rank) INCLUDE (live, government_total, program_code, stage);

-- period_persons: distinct persons counted ahead for the selections asked
-- most, a whole year or a single term (from_rank..to_rank) with no school
-- filter: filter is '' or 'stage:<stage>', program_code '' (all programs)
-- or one program. persons counts the students with a live row in the
-- cell, government_persons those with a live row of a program counting
-- toward the government total. The consumer moves them when a student's
-- row in person_terms crosses 0 ↔ 1 and no other row of theirs keeps them
-- counted.
CREATE TABLE period_persons (
  from_rank          integer NOT NULL,
  to_rank            integer NOT NULL,
  filter             text NOT NULL,
  program_code       text NOT NULL,
  persons            bigint NOT NULL,
  government_persons bigint NOT NULL,
  PRIMARY KEY (from_rank, to_rank, filter, program_code)
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
CREATE FUNCTION rebuilt_facts() RETURNS TABLE (term_rank integer, program_code text, school_code text, stage text,
  government_total boolean, loan boolean, shares_bp jsonb, student_id_hash text, amount_fen bigint, recovered_fen bigint)
LANGUAGE sql STABLE AS $$
SELECT a.term_rank, a.program_code, a.school_code, a.stage, a.government_total, p.loan_contract_number <> '',
       a.shares_bp, a.student_id_hash, p.amount_fen, coalesce(x.recovered_fen, 0)::bigint
FROM payments p JOIN applications a USING (application_id)
LEFT JOIN (SELECT r.payment_id, sum(rr.amount_fen) AS recovered_fen FROM refunds r JOIN refund_receipts rr USING (refund_id)
           GROUP BY 1) x USING (payment_id)
$$;

CREATE FUNCTION rebuild_aggregates() RETURNS void LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
DELETE FROM paid_groups;
DELETE FROM person_terms;
DELETE FROM period_persons;
-- payment_facts set-based (the receipts summed once, joined), twice: the
-- migration's role may not create temporary tables.
INSERT INTO paid_groups (term_rank, program_code, school_code, stage, government_total, loan, shares_bp, net_fen,
                         payments, gross_fen, recovered_fen)
SELECT term_rank, program_code, school_code, stage, government_total, loan, shares_bp, amount_fen - recovered_fen,
       count(*), sum(amount_fen), sum(recovered_fen)
FROM rebuilt_facts() GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
INSERT INTO person_terms (term_rank, program_code, school_code, stage, government_total, student_id_hash, live)
SELECT term_rank, program_code, school_code, stage, government_total, student_id_hash, count(*)
FROM rebuilt_facts() WHERE NOT loan AND amount_fen > recovered_fen GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO period_persons (from_rank, to_rank, filter, program_code, persons, government_persons)
SELECT from_rank, to_rank, filter, program, count(*), count(*) FILTER (WHERE gov)
FROM (
  SELECT c.from_rank, c.to_rank, f.filter, pr.program, t.student_id_hash, bool_or(t.government_total) AS gov
  FROM person_terms t,
       LATERAL (VALUES (t.term_rank, t.term_rank), (t.term_rank / 2 * 2, t.term_rank / 2 * 2 + 1)) c (from_rank, to_rank),
       LATERAL (VALUES (''), ('stage:' || t.stage)) f (filter),
       LATERAL (VALUES (''), (t.program_code)) pr (program)
  WHERE t.live > 0
  GROUP BY 1, 2, 3, 4, 5) cells
GROUP BY 1, 2, 3, 4;
END;
$$;

SELECT rebuild_aggregates();
