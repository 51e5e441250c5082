-- Payment batches: the bureau-approved items of one term, program and
-- funding source, with the control count and control sum of their PENDING
-- items kept in the same transaction as every item change.
CREATE TABLE batches (
  batch_id        uuid        PRIMARY KEY,
  term            text        NOT NULL,
  program_code    text        NOT NULL,
  funding_source  text        NOT NULL,
  status          text        NOT NULL DEFAULT 'OPEN' CHECK (status IN ('OPEN', 'CLOSED', 'CONFIRMED')),
  control_count   bigint      NOT NULL DEFAULT 0 CHECK (control_count >= 0),
  control_sum_fen bigint      NOT NULL DEFAULT 0 CHECK (control_sum_fen >= 0),
  paid_count      bigint      NOT NULL DEFAULT 0 CHECK (paid_count >= 0),
  paid_sum_fen    bigint      NOT NULL DEFAULT 0 CHECK (paid_sum_fen >= 0),
  failed_count    bigint      NOT NULL DEFAULT 0 CHECK (failed_count >= 0),
  closed_by       text        NOT NULL DEFAULT '',
  closed_at       timestamptz,
  confirmed_by    text        NOT NULL DEFAULT '',
  confirmed_at    timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CHECK ((status = 'CONFIRMED') = (confirmed_at IS NOT NULL))
);
-- At most one OPEN batch per (term, program, funding source): concurrent
-- consumers creating one race on this index and all but one do nothing.
CREATE UNIQUE INDEX batches_one_open ON batches (term, program_code, funding_source) WHERE status = 'OPEN';
-- ListBatches: newest first, keyset on (created_at, batch_id).
CREATE INDEX batches_newest ON batches (created_at DESC, batch_id DESC);

-- One row per application per batch it joined.
CREATE TABLE items (
  batch_id        uuid        NOT NULL REFERENCES batches (batch_id),
  application_id  uuid        NOT NULL,
  school_code     text        NOT NULL,
  amount_fen      bigint      NOT NULL CHECK (amount_fen > 0),
  status          text        NOT NULL DEFAULT 'PENDING'
                  CHECK (status IN ('PENDING', 'RETURNED', 'ORDERED', 'PAID', 'FAILED')),
  -- Why the item was returned, or the bank's reason code for a failed payment.
  reason          text        NOT NULL DEFAULT '',
  -- The current payment order; a reissue replaces it.
  payment_id      uuid        UNIQUE,
  attempt         integer     NOT NULL DEFAULT 0,
  -- The school corrected the payee after the latest failed payment.
  corrected       boolean     NOT NULL DEFAULT false,
  -- Separation of duties: who handled the item before finance.
  submitted_by    text        NOT NULL DEFAULT '',
  school_reviewer text        NOT NULL DEFAULT '',
  bureau_reviewer text        NOT NULL DEFAULT '',
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (batch_id, application_id),
  CHECK ((status IN ('ORDERED', 'PAID', 'FAILED')) = (payment_id IS NOT NULL))
);
-- Nothing is paid twice: an application is live in at most one batch.
CREATE UNIQUE INDEX items_one_live_per_application ON items (application_id) WHERE status <> 'RETURNED';
