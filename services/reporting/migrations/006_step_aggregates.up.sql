-- Step figures kept ahead (issue 14's speed targets): the consumer keeps
-- these in the same transaction as the visit it records
-- (adapters/steps.go); rebuild_step_aggregates() computes them from
-- step_visits, fills them for an existing database, and is what the
-- benchmark calls after generating visits set-based. docs/reporting.md
-- ("Steps kept ahead") explains how the medians stay exact.

-- bucket: the visit's duration on a logarithmic scale, 32 buckets per
-- doubling (each about 2.2 % wide), 0 under a second. It never decreases
-- as the duration grows, so the visits in order of bucket, then seconds,
-- are in order of seconds: a rank found in the histogram is looked up
-- exactly among the visits of one bucket.
ALTER TABLE step_visits ADD COLUMN bucket integer GENERATED ALWAYS AS (
  CASE WHEN left_at IS NULL THEN NULL
       WHEN extract(epoch FROM left_at - entered_at)::float8 < 1 THEN 0
       ELSE 1 + floor(ln(extract(epoch FROM left_at - entered_at)::float8) * 32)::integer END) STORED;

-- The exact rank search inside a bucket, in order of seconds.
CREATE INDEX step_visits_bucket ON step_visits (ord, bucket, seconds)
  INCLUDE (term_rank, school_code, stage, program_code, entered_at, left_at) WHERE left_at IS NOT NULL;
-- An answer as of an earlier instant corrects the visits entered or left
-- after it.
CREATE INDEX step_visits_entered_at ON step_visits (entered_at);
CREATE INDEX step_visits_left_at ON step_visits (left_at) WHERE left_at IS NOT NULL;

-- step_cells: per step and selection cell, the visits at the step (not
-- left) and those that left it.
CREATE TABLE step_cells (
  ord          smallint NOT NULL,
  term_rank    integer NOT NULL,
  school_code  text NOT NULL,
  stage        text NOT NULL,
  program_code text NOT NULL,
  at_step      bigint NOT NULL CHECK (at_step >= 0),
  left_step    bigint NOT NULL CHECK (left_step >= 0),
  PRIMARY KEY (ord, term_rank, school_code, stage, program_code)
);

-- step_durations: the histogram of the durations of the visits that left,
-- per step, cell and bucket.
CREATE TABLE step_durations (
  ord          smallint NOT NULL,
  term_rank    integer NOT NULL,
  school_code  text NOT NULL,
  stage        text NOT NULL,
  program_code text NOT NULL,
  bucket       integer NOT NULL,
  visits       bigint NOT NULL CHECK (visits >= 0),
  PRIMARY KEY (ord, term_rank, school_code, stage, program_code, bucket)
);

-- step_reasons: the school's and the bureau's rejections by reason, per
-- cell.
CREATE TABLE step_reasons (
  ord          smallint NOT NULL,
  term_rank    integer NOT NULL,
  school_code  text NOT NULL,
  stage        text NOT NULL,
  program_code text NOT NULL,
  step         text NOT NULL,
  reason       text NOT NULL,
  visits       bigint NOT NULL CHECK (visits >= 0),
  PRIMARY KEY (ord, term_rank, school_code, stage, program_code, reason)
);

CREATE FUNCTION rebuild_step_aggregates() RETURNS void LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
DELETE FROM step_cells;
DELETE FROM step_durations;
DELETE FROM step_reasons;
INSERT INTO step_cells (ord, term_rank, school_code, stage, program_code, at_step, left_step)
SELECT ord, term_rank, school_code, stage, program_code, count(*) FILTER (WHERE left_at IS NULL), count(left_at)
FROM step_visits GROUP BY 1, 2, 3, 4, 5;
INSERT INTO step_durations (ord, term_rank, school_code, stage, program_code, bucket, visits)
SELECT ord, term_rank, school_code, stage, program_code, bucket, count(*)
FROM step_visits WHERE left_at IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO step_reasons (ord, term_rank, school_code, stage, program_code, step, reason, visits)
SELECT ord, term_rank, school_code, stage, program_code, min(step), reason, count(*)
FROM step_visits WHERE ord IN (8, 9) GROUP BY 1, 2, 3, 4, 5, 7;
END;
$$;

SELECT rebuild_step_aggregates();
