-- Webhooks: a school's change feed pushed to a portal's URL (docs/api.md,
-- "Webhooks"). Each webhook keeps the feed position it has delivered up to
-- (after_xid, after_seq: the changes table's (xid, seq), migration 007);
-- one owner (the lease "webhooks") delivers, in feed order.
CREATE TABLE webhooks (
  webhook_id        uuid        PRIMARY KEY,
  school_code       text        NOT NULL,
  url               text        NOT NULL,
  -- The signing secret, sealed (pii.Sealer) and bound to the webhook's ID.
  secret_sealed     bytea       NOT NULL,
  created_by        text        NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  deleted_at        timestamptz,
  after_xid         xid8        NOT NULL,
  after_seq         bigint      NOT NULL CHECK (after_seq >= 0),
  last_delivered_at timestamptz,
  -- Failed attempts of the delivery now pending, and when to try again.
  attempts          int         NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at   timestamptz NOT NULL DEFAULT now(),
  last_error        text        NOT NULL DEFAULT ''
);
CREATE INDEX webhooks_by_school ON webhooks (school_code, created_at DESC, webhook_id);
CREATE INDEX webhooks_due ON webhooks (next_attempt_at) WHERE deleted_at IS NULL;

-- Deliveries given up on: the changes after (after_xid, after_seq) up to
-- and including (last_xid, last_seq).
CREATE TABLE webhook_dead_letters (
  dead_letter_id uuid        PRIMARY KEY,
  webhook_id     uuid        NOT NULL REFERENCES webhooks,
  after_xid      xid8        NOT NULL,
  after_seq      bigint      NOT NULL,
  last_xid       xid8        NOT NULL,
  last_seq       bigint      NOT NULL,
  changes        int         NOT NULL CHECK (changes > 0),
  attempts       int         NOT NULL,
  last_error     text        NOT NULL,
  failed_at      timestamptz NOT NULL DEFAULT now(),
  redelivered_at timestamptz
);
CREATE INDEX webhook_dead_letters_by_webhook ON webhook_dead_letters (webhook_id, failed_at DESC, dead_letter_id);
