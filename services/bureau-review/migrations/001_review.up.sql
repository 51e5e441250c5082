-- One row per school-approved application under the bureau's review. The row
-- is the item's current state; its history is the events in the outbox.
CREATE TABLE review (
  application_id    uuid        PRIMARY KEY,
  school_code       text        NOT NULL,
  term              text        NOT NULL,
  program_code      text        NOT NULL,
  stage             text        NOT NULL,
  student_id_masked text        NOT NULL,
  student_id_hash   text        NOT NULL,
  hardship_level    text        NOT NULL DEFAULT '',
  amount_fen        bigint      NOT NULL CHECK (amount_fen >= 0),
  funding_source    text        NOT NULL,
  -- Who submitted and who reviewed at the school, for separation of duties.
  submitted_by      text        NOT NULL,
  school_reviewer   text        NOT NULL,
  state             text        NOT NULL CHECK (state IN ('PENDING', 'APPROVED', 'REJECTED')),
  reason            text        NOT NULL DEFAULT '',
  reviewer          text        NOT NULL DEFAULT '',
  -- How many times finance sent the item back.
  returns           integer     NOT NULL DEFAULT 0,
  -- W3C trace context of the notice_passed consumer span, for span links.
  traceparent       text        NOT NULL DEFAULT '',
  tracestate        text        NOT NULL DEFAULT '',
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);

-- The bureau's work list across schools, by state, in keyset order.
CREATE INDEX review_state ON review (state, application_id);
-- One school's items.
CREATE INDEX review_school_state ON review (school_code, state, application_id);
