-- step_visits: each time an application entered a step of the chain
-- (application.submitted, school review, notice, bureau review, finance,
-- payout events), with when it left it: the entry of the step that followed
-- by the events' occurred_at. An application's current step is its visit
-- with no left_at. Events may arrive in any order: a visit is inserted
-- between its neighbours (adapters/steps.go), so an older event never
-- moves an application back, it only fills its history. The selection's
-- columns are copied from the application so that counts and medians read
-- this table alone.
CREATE TABLE step_visits (
  application_id uuid NOT NULL REFERENCES applications,
  entered_at     timestamptz NOT NULL,
  -- ord: the step's place in the chain, which orders visits entered at the
  -- same instant.
  ord            smallint NOT NULL,
  step           text NOT NULL,
  left_at        timestamptz,
  -- seconds: the visit's duration, once it has left (computed once here,
  -- not per query: the medians sort it).
  seconds        double precision GENERATED ALWAYS AS (extract(epoch FROM left_at - entered_at)) STORED,
  -- reason: of a rejection, withdrawal, objection, return or failure, as
  -- given (trimmed).
  reason         text NOT NULL DEFAULT '',
  event_id       uuid NOT NULL,
  term_rank      integer NOT NULL,
  school_code    text NOT NULL,
  stage          text NOT NULL,
  program_code   text NOT NULL,
  PRIMARY KEY (application_id, entered_at, ord),
  CHECK (left_at IS NULL OR left_at >= entered_at)
);
-- Counts and medians by step of a selection: read in step order, so that
-- the medians group without sorting the visits by step first.
CREATE INDEX step_visits_selection ON step_visits (ord, term_rank) INCLUDE (school_code, stage, program_code, entered_at, left_at, seconds);
