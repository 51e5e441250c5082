-- Payees as the application service last described them: the sealed card
-- number and account name exactly as received (never opened here except in
-- memory, just before a bank call), keyed by application. The newest
-- description by event time wins.
CREATE TABLE payees (
  application_id      uuid        PRIMARY KEY,
  bank_card_sealed    bytea       NOT NULL,
  account_name_sealed bytea       NOT NULL,
  bank_card_masked    text        NOT NULL,
  source_event_id     uuid        NOT NULL,
  source_at           timestamptz NOT NULL,
  updated_at          timestamptz NOT NULL DEFAULT now()
);

-- One row per payment finance ordered. The payee is copied in when the order
-- arrives, so the row shows which card was paid.
CREATE TABLE payments (
  payment_id          uuid        PRIMARY KEY,
  application_id      uuid        NOT NULL,
  batch_id            uuid        NOT NULL,
  school_code         text        NOT NULL,
  program_code        text        NOT NULL,
  term                text        NOT NULL,
  amount_fen          bigint      NOT NULL CHECK (amount_fen > 0),
  -- Finance's attempt number of the item: 1, then one more per reissue.
  order_attempt       integer     NOT NULL,
  bank_card_sealed    bytea       NOT NULL,
  account_name_sealed bytea       NOT NULL,
  bank_card_masked    text        NOT NULL,
  status              text        NOT NULL DEFAULT 'PENDING'
                      CHECK (status IN ('PENDING', 'UNKNOWN', 'PAID', 'FAILED')),
  reason              text        NOT NULL DEFAULT '',
  bank_ref            text        NOT NULL DEFAULT '',
  -- Times payout took the payment up to send it or ask the bank about it.
  attempts            integer     NOT NULL DEFAULT 0,
  -- When a worker may take it up next: at once for PENDING, after a lease
  -- or a backoff for UNKNOWN.
  next_attempt_at     timestamptz NOT NULL DEFAULT now(),
  -- The worker round that last took it up.
  claim_id            uuid,
  last_error          text        NOT NULL DEFAULT '',
  -- Trace context of the payment_ordered event, continued by the bank call.
  traceparent         text        NOT NULL DEFAULT '',
  tracestate          text        NOT NULL DEFAULT '',
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  CHECK (status <> 'PAID' OR (bank_ref <> '' AND reason = '')),
  CHECK (status <> 'FAILED' OR reason <> '')
);
-- The worker's queue: open payments by when they are due.
CREATE INDEX payments_due ON payments (next_attempt_at) WHERE status IN ('PENDING', 'UNKNOWN');
-- Nothing is paid twice: an application has at most one payment that is
-- open or paid; only after a failure may finance order another.
CREATE UNIQUE INDEX payments_one_live_per_application ON payments (application_id) WHERE status <> 'FAILED';
CREATE INDEX payments_by_batch ON payments (batch_id, created_at, payment_id);
CREATE INDEX payments_by_application ON payments (application_id, created_at, payment_id);
