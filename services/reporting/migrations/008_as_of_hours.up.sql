-- Answers as of an earlier instant from the aggregates (issue 14's speed
-- targets): every aggregate an answer reads is also kept as its changes
-- per hour of the instant the change happened (paid_at, received_at,
-- entered_at, left_at). The state as of the end of hour H is the sum of
-- the changes of hours <= H; an answer as of an instant inside an hour
-- starts from the sum up to one end of that hour and corrects from their
-- rows only the students (or visits) with an event between that end and
-- the instant (adapters/asof.go). The consumer keeps these in the
-- transaction that records the event; rebuild_as_of_logs() computes them
-- from the rows. docs/reporting.md ("As of an earlier instant") explains
-- why the answers stay exact.

-- hour_of: the hour an instant falls in, counted from the Unix epoch.
CREATE FUNCTION hour_of(ts timestamptz) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT floor(extract(epoch FROM ts) / 3600)::bigint $$;

-- paid_log: the changes of paid_groups by hour: a payment counts in its
-- group (by net amount) from the hour it was paid; a receipt moves it to
-- its new net amount from the hour it was received (or paid, if later).
CREATE TABLE paid_log (
  at_hour          bigint NOT NULL,
  term_rank        integer NOT NULL,
  program_code     text NOT NULL,
  school_code      text NOT NULL,
  stage            text NOT NULL,
  government_total boolean NOT NULL,
  loan             boolean NOT NULL,
  shares_bp        jsonb NOT NULL,
  net_fen          bigint NOT NULL,
  payments         bigint NOT NULL,
  gross_fen        bigint NOT NULL,
  recovered_fen    bigint NOT NULL,
  PRIMARY KEY (term_rank, program_code, school_code, stage, government_total, loan, shares_bp, net_fen, at_hour)
);

-- person_runs_log: the changes of person_runs by hour: each student's
-- runs of live terms as of the end of each hour in which one of their
-- payments was paid or receipts received, less those as of the hour
-- before.
CREATE TABLE person_runs_log (
  school_code text NOT NULL,
  filter      text NOT NULL,
  program_key text NOT NULL,
  term_rank   integer NOT NULL,
  prev_rank   integer NOT NULL,
  at_hour     bigint NOT NULL,
  persons     bigint NOT NULL,
  PRIMARY KEY (school_code, filter, program_key, term_rank, prev_rank, at_hour)
);

-- multi_school_ever: the students with grant payments at two schools or
-- more (refunded or not): every student with live rows at two schools at
-- some instant is one of them. A school set's persons as of an instant
-- take out these students' extra schools, counted from their rows.
CREATE TABLE multi_school_ever (
  student_id_hash text PRIMARY KEY
);

-- step_cells_log, step_durations_log, step_reasons_log: the changes of
-- the step aggregates by hour: a visit is at its step from the hour it
-- entered, has left it (with its duration's bucket) from the hour it
-- left; a rejection counts from the hour it was entered.
CREATE TABLE step_cells_log (
  ord          smallint NOT NULL,
  term_rank    integer NOT NULL,
  school_code  text NOT NULL,
  stage        text NOT NULL,
  program_code text NOT NULL,
  at_hour      bigint NOT NULL,
  at_step      bigint NOT NULL,
  left_step    bigint NOT NULL,
  PRIMARY KEY (ord, term_rank, school_code, stage, program_code, at_hour)
);
CREATE TABLE step_durations_log (
  ord          smallint NOT NULL,
  term_rank    integer NOT NULL,
  school_code  text NOT NULL,
  stage        text NOT NULL,
  program_code text NOT NULL,
  bucket       integer NOT NULL,
  at_hour      bigint NOT NULL,
  visits       bigint NOT NULL,
  PRIMARY KEY (ord, term_rank, school_code, stage, program_code, bucket, at_hour)
);
CREATE TABLE step_reasons_log (
  ord          smallint NOT NULL,
  term_rank    integer NOT NULL,
  school_code  text NOT NULL,
  stage        text NOT NULL,
  program_code text NOT NULL,
  step         text NOT NULL,
  reason       text NOT NULL,
  at_hour      bigint NOT NULL,
  visits       bigint NOT NULL,
  PRIMARY KEY (ord, term_rank, school_code, stage, program_code, reason, at_hour)
);

-- The correction inside an hour finds the receipts received in it.
CREATE INDEX refund_receipts_refund_received ON refund_receipts (refund_id, received_at);

-- rebuild_paid_logs replaces paid_log, person_runs_log and
-- multi_school_ever by those computed from the rows.
CREATE FUNCTION rebuild_paid_logs() RETURNS void LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
DELETE FROM paid_log;
DELETE FROM person_runs_log;
DELETE FROM multi_school_ever;

-- Each payment's states: from the hour it was paid, and from each later
-- hour with a receipt, its net amount then; a state counts +1 from its
-- hour and -1 from the next state's. Payments with no receipt have one
-- state (read apart: they are nearly all).
INSERT INTO paid_log (at_hour, term_rank, program_code, school_code, stage, government_total, loan, shares_bp, net_fen,
                      payments, gross_fen, recovered_fen)
SELECT h, term_rank, program_code, school_code, stage, government_total, loan, shares_bp, net, sum(n), sum(gross), sum(rec)
FROM (
  SELECT hour_of(p.paid_at) AS h, a.term_rank, a.program_code, a.school_code, a.stage, a.government_total,
         p.loan_contract_number <> '' AS loan, a.shares_bp, p.amount_fen AS net, 1 AS n, p.amount_fen AS gross, 0::bigint AS rec
  FROM payments p JOIN applications a USING (application_id)
  WHERE NOT EXISTS (SELECT 1 FROM refunds r JOIN refund_receipts rr USING (refund_id) WHERE r.payment_id = p.payment_id)
  UNION ALL
  SELECT s.hh, x.term_rank, x.program_code, x.school_code, x.stage, x.government_total, x.loan, x.shares_bp,
         x.amount_fen - x.rec, s.n, s.n * x.amount_fen, s.n * x.rec
  FROM (
    SELECT st.*, lead(st.h) OVER (PARTITION BY st.payment_id ORDER BY st.h) AS nh,
           coalesce((SELECT sum(rr.amount_fen) FROM refunds r JOIN refund_receipts rr USING (refund_id)
                     WHERE r.payment_id = st.payment_id AND greatest(hour_of(rr.received_at), st.ph) <= st.h), 0)::bigint AS rec
    FROM (
      SELECT DISTINCT p.payment_id, hour_of(p.paid_at) AS ph, hh.h, a.term_rank, a.program_code, a.school_code, a.stage,
             a.government_total, p.loan_contract_number <> '' AS loan, a.shares_bp, p.amount_fen
      FROM payments p JOIN applications a USING (application_id),
           LATERAL (SELECT hour_of(p.paid_at)
                    UNION SELECT greatest(hour_of(rr.received_at), hour_of(p.paid_at))
                    FROM refunds r JOIN refund_receipts rr USING (refund_id) WHERE r.payment_id = p.payment_id) hh (h)
      WHERE EXISTS (SELECT 1 FROM refunds r JOIN refund_receipts rr USING (refund_id) WHERE r.payment_id = p.payment_id)) st
  ) x,
  LATERAL (VALUES (x.h, 1), (x.nh, -1)) s (hh, n)
  WHERE s.hh IS NOT NULL
) c
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
HAVING sum(n) <> 0 OR sum(gross) <> 0 OR sum(rec) <> 0;

-- Each student's live rows as of the end of each hour in which one of
-- their grant payments was paid or a receipt against one received (or
-- paid, if later), their runs of live terms then, counted +1 from that
-- hour and -1 from the student's next such hour.
INSERT INTO person_runs_log (school_code, filter, program_key, term_rank, prev_rank, at_hour, persons)
WITH pay AS MATERIALIZED (
  SELECT a.student_id_hash AS sid, p.payment_id, a.term_rank, a.school_code, a.stage, a.program_code, a.government_total,
         p.amount_fen, hour_of(p.paid_at) AS ph,
         EXISTS (SELECT 1 FROM refunds r JOIN refund_receipts rr USING (refund_id) WHERE r.payment_id = p.payment_id) AS refunded
  FROM payments p JOIN applications a USING (application_id) WHERE p.loan_contract_number = ''),
hours AS (
  SELECT sid, h, lead(h) OVER (PARTITION BY sid ORDER BY h) AS nh FROM (
    SELECT sid, ph AS h FROM pay
    UNION SELECT pay.sid, greatest(hour_of(rr.received_at), pay.ph)
    FROM pay JOIN refunds r USING (payment_id) JOIN refund_receipts rr USING (refund_id) WHERE pay.refunded) x),
live AS (
  SELECT DISTINCT hs.sid, hs.h, hs.nh, pay.term_rank, pay.school_code, pay.stage, pay.program_code, pay.government_total
  FROM hours hs JOIN pay ON pay.sid = hs.sid AND pay.ph <= hs.h
  WHERE NOT pay.refunded OR pay.amount_fen > (SELECT coalesce(sum(rr.amount_fen), 0) FROM refunds r JOIN refund_receipts rr USING (refund_id)
                                              WHERE r.payment_id = pay.payment_id AND greatest(hour_of(rr.received_at), pay.ph) <= hs.h)),
keyed AS (
  SELECT DISTINCT l.sid, l.h, l.nh, s.sc, x.f, k.k, l.term_rank FROM live l,
    LATERAL (VALUES (l.school_code), ('')) s (sc),
    LATERAL (VALUES (''), ('stage:' || l.stage)) x (f),
    LATERAL (VALUES (''), (l.program_code), (CASE WHEN l.government_total THEN '*gov' END),
                    (CASE WHEN l.government_total THEN 'gov:' || l.program_code END)) k (k)
  WHERE k.k IS NOT NULL),
runs AS (
  SELECT h, nh, sc, f, k, term_rank,
         coalesce(lag(term_rank) OVER (PARTITION BY sid, h, sc, f, k ORDER BY term_rank), 0) AS prev FROM keyed)
SELECT sc, f, k, term_rank, prev, c.hh, sum(c.n) FROM runs, LATERAL (VALUES (h, 1), (nh, -1)) c (hh, n)
WHERE c.hh IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(c.n) <> 0;

INSERT INTO multi_school_ever (student_id_hash)
SELECT a.student_id_hash FROM payments p JOIN applications a USING (application_id)
WHERE p.loan_contract_number = '' GROUP BY 1 HAVING count(DISTINCT a.school_code) > 1;
END;
$$;

-- rebuild_step_logs replaces the step logs by those computed from
-- step_visits.
CREATE FUNCTION rebuild_step_logs() RETURNS void LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
DELETE FROM step_cells_log;
DELETE FROM step_durations_log;
DELETE FROM step_reasons_log;
INSERT INTO step_cells_log (ord, term_rank, school_code, stage, program_code, at_hour, at_step, left_step)
SELECT ord, term_rank, school_code, stage, program_code, h, sum(a), sum(l) FROM (
  SELECT ord, term_rank, school_code, stage, program_code, hour_of(entered_at) AS h, 1 AS a, 0 AS l FROM step_visits
  UNION ALL
  SELECT ord, term_rank, school_code, stage, program_code, hour_of(left_at), -1, 1 FROM step_visits WHERE left_at IS NOT NULL) v
GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(a) <> 0 OR sum(l) <> 0;
INSERT INTO step_durations_log (ord, term_rank, school_code, stage, program_code, bucket, at_hour, visits)
SELECT ord, term_rank, school_code, stage, program_code, bucket, hour_of(left_at), count(*)
FROM step_visits WHERE left_at IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7;
INSERT INTO step_reasons_log (ord, term_rank, school_code, stage, program_code, step, reason, at_hour, visits)
SELECT ord, term_rank, school_code, stage, program_code, min(step), reason, hour_of(entered_at), count(*)
FROM step_visits WHERE ord IN (8, 9) GROUP BY 1, 2, 3, 4, 5, 7, 8;
END;
$$;

SELECT rebuild_paid_logs();
SELECT rebuild_step_logs();
