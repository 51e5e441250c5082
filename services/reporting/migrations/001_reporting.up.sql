-- The reporting service's read model: what it learnt from the chain's
-- events, keyed as the events key it. Figures are computed from payments
-- (minus refunds recovered); applications only say whose payment it was and
-- how the program splits it.

-- applications: one row per submitted application (application.submitted.v1).
CREATE TABLE applications (
  application_id   uuid PRIMARY KEY,
  student_id_hash  text NOT NULL,
  school_code      text NOT NULL,
  program_code     text NOT NULL,
  term             text NOT NULL,
  -- term_rank orders terms: year*2, +1 for autumn.
  term_rank        integer NOT NULL,
  stage            text NOT NULL,
  funding_source   text NOT NULL,
  government_total boolean NOT NULL,
  -- shares_bp: basis points by source, as the policy version split it.
  shares_bp        jsonb NOT NULL,
  policy_version   bigint NOT NULL,
  submitted_at     timestamptz NOT NULL
);

-- payments: one row per payment that succeeded (payout.payment_succeeded.v1).
-- A loan (loan_contract_number set) is issued, not a grant paid.
CREATE TABLE payments (
  payment_id           text PRIMARY KEY,
  application_id       uuid NOT NULL REFERENCES applications,
  amount_fen           bigint NOT NULL CHECK (amount_fen > 0),
  loan_contract_number text NOT NULL DEFAULT '',
  paid_at              timestamptz NOT NULL
);
CREATE INDEX payments_application ON payments (application_id);

-- refunds: ordered by the data office against one payment.
CREATE TABLE refunds (
  refund_id    text PRIMARY KEY,
  payment_id   text NOT NULL,
  clue_id      text NOT NULL,
  amount_fen   bigint NOT NULL,
  opened_at    timestamptz NOT NULL
);
CREATE INDEX refunds_payment ON refunds (payment_id);

-- refund_receipts: money recovered against a refund, one row per receipt event.
CREATE TABLE refund_receipts (
  event_id     uuid PRIMARY KEY,
  refund_id    text NOT NULL REFERENCES refunds,
  amount_fen   bigint NOT NULL CHECK (amount_fen > 0),
  received_at  timestamptz NOT NULL
);
CREATE INDEX refund_receipts_refund ON refund_receipts (refund_id);

-- loan_repayments: repayments and recoveries of loans (loan.repayment_recorded.v1).
CREATE TABLE loan_repayments (
  repayment_id    text PRIMARY KEY,
  contract_number text NOT NULL,
  kind            text NOT NULL,
  amount_fen      bigint NOT NULL,
  -- paid_on: the day the bank received it, in the local calendar.
  paid_on         date NOT NULL,
  recorded_at     timestamptz NOT NULL
);

-- comparisons: the data office's comparison runs.
CREATE TABLE comparisons (
  run_id       bigint PRIMARY KEY,
  from_term    text NOT NULL,
  to_term      text NOT NULL,
  records      bigint NOT NULL,
  new_clues    bigint NOT NULL,
  completed_at timestamptz NOT NULL
);

-- clues: the problem clues and how they ended.
CREATE TABLE clues (
  clue_id         text PRIMARY KEY,
  kind            text NOT NULL,
  origin          text NOT NULL,
  school_code     text NOT NULL,
  program_code    text NOT NULL,
  term            text NOT NULL,
  student_id_hash text NOT NULL,
  amount_fen      bigint NOT NULL,
  raised_at       timestamptz NOT NULL,
  -- outcome: '' (open), verified or dismissed; ineligible when verified so.
  outcome         text NOT NULL DEFAULT '',
  ineligible      boolean NOT NULL DEFAULT false,
  closed_at       timestamptz
);

-- report_versions: the FINAL versions of a year's report, never changed.
CREATE TABLE report_versions (
  year           integer NOT NULL,
  version        integer NOT NULL CHECK (version > 0),
  as_of          timestamptz NOT NULL,
  content        jsonb NOT NULL,
  content_sha256 text NOT NULL,
  finalised_by   text NOT NULL,
  finalised_role text NOT NULL,
  note           text NOT NULL,
  changes        jsonb NOT NULL,
  created_at     timestamptz NOT NULL,
  PRIMARY KEY (year, version)
);
