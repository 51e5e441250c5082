-- One row per application under the school's review. The row is the review
-- item's current state; its history is the events in the outbox.
CREATE TABLE review (
  application_id      uuid        PRIMARY KEY,
  school_code         text        NOT NULL,
  term                text        NOT NULL,
  program_code        text        NOT NULL,
  stage               text        NOT NULL,
  student_id_masked   text        NOT NULL,
  student_name_masked text        NOT NULL,
  student_id_hash     text        NOT NULL,
  tiered              boolean     NOT NULL,
  -- The standard amount from the submission (0 for tiered programs).
  base_amount_fen     bigint      NOT NULL CHECK (base_amount_fen >= 0),
  -- The amount as decided: the base amount, or the level's amount once a
  -- tiered program is approved.
  amount_fen          bigint      NOT NULL CHECK (amount_fen >= 0),
  funding_source      text        NOT NULL,
  submitted_by        text        NOT NULL,
  state               text        NOT NULL CHECK (state IN ('PENDING', 'IN_NOTICE', 'REJECTED', 'PASSED')),
  hardship_level      text        NOT NULL DEFAULT '',
  reason              text        NOT NULL DEFAULT '',
  reviewer            text        NOT NULL DEFAULT '',
  notice_ends_at      timestamptz,
  objections          integer     NOT NULL DEFAULT 0,
  -- W3C trace context of the submission's consumer span, for span links.
  traceparent         text        NOT NULL DEFAULT '',
  tracestate          text        NOT NULL DEFAULT '',
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  -- A running notice has a deadline; a passed one keeps it.
  CHECK (state <> 'IN_NOTICE' OR notice_ends_at IS NOT NULL)
);

-- A school's work list, by state, in keyset order.
CREATE INDEX review_school_state ON review (school_code, state, application_id);
-- Cross-school lists (bureau, auditors).
CREATE INDEX review_state ON review (state, application_id);
-- The notice timer's due items.
CREATE INDEX review_notice_due ON review (notice_ends_at) WHERE state = 'IN_NOTICE';
