-- Distinct persons of any term range and school set counted ahead
-- (issue 14's speed targets), so that no answer groups person_terms by
-- student. The consumer keeps these in the transaction that moves
-- person_terms (adapters/aggregates.go); rebuild_person_runs() computes
-- them from person_terms. docs/reporting.md ("Persons of any range and
-- school set") explains the counting.

-- person_runs: in each cell — a school or all schools (school_code ''),
-- all stages or one (filter '' or 'stage:<stage>'), and a program key (''
-- all programs, a program's code, '*gov' the programs counting toward the
-- government total, 'gov:<code>' a program's rows counting toward it) —
-- each student's live terms in order, t1 < t2 < …, are counted once per
-- term with the term before it (prev_rank, 0 for the first). A student has
-- a live term in from..to exactly when one of their terms t in from..to
-- has prev_rank < from, so the distinct persons of a range are
-- sum(persons) WHERE term_rank BETWEEN from AND to AND prev_rank < from.
CREATE TABLE person_runs (
  school_code text NOT NULL,
  filter      text NOT NULL,
  program_key text NOT NULL,
  term_rank   integer NOT NULL,
  prev_rank   integer NOT NULL,
  persons     bigint NOT NULL,
  PRIMARY KEY (school_code, filter, program_key, term_rank, prev_rank)
);

-- multi_school_students: the students with live rows at two schools or
-- more. A school set's persons are the sum of its schools' persons, less
-- these students' extra schools, counted from their rows.
CREATE TABLE multi_school_students (
  student_id_hash text COLLATE "C" PRIMARY KEY
);

CREATE FUNCTION rebuild_person_runs() RETURNS void LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
DELETE FROM person_runs;
DELETE FROM multi_school_students;
INSERT INTO person_runs (school_code, filter, program_key, term_rank, prev_rank, persons)
SELECT sc, f, k, term_rank, prev, count(*) FROM (
  SELECT sc, f, k, term_rank,
         coalesce(lag(term_rank) OVER (PARTITION BY sc, f, k, student_id_hash ORDER BY term_rank), 0) AS prev
  FROM (SELECT DISTINCT s.sc, x.f, p.k, t.student_id_hash, t.term_rank
        FROM person_terms t,
             LATERAL (VALUES (t.school_code), ('')) s (sc),
             LATERAL (VALUES (''), ('stage:' || t.stage)) x (f),
             LATERAL (VALUES (''), (t.program_code), (CASE WHEN t.government_total THEN '*gov' END),
                             (CASE WHEN t.government_total THEN 'gov:' || t.program_code END)) p (k)
        WHERE t.live > 0 AND p.k IS NOT NULL) d) r
GROUP BY 1, 2, 3, 4, 5;
INSERT INTO multi_school_students (student_id_hash)
SELECT student_id_hash FROM person_terms WHERE live > 0 GROUP BY 1 HAVING count(DISTINCT school_code) > 1;
END;
$$;

SELECT rebuild_person_runs();
