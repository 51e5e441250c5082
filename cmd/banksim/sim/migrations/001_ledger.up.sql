-- The simulated bank's ledger: one row per idempotency key, written once.
-- Unqualified names: the migration helper sets search_path to the owning schema.
CREATE TABLE credits (
  idempotency_key text PRIMARY KEY,
  bank_ref        text NOT NULL UNIQUE,
  -- A simulator of an external bank: it keeps the card in clear, as a bank would.
  card_number     text NOT NULL,
  account_name    text NOT NULL,
  amount_fen      bigint NOT NULL CHECK (amount_fen > 0),
  status          text NOT NULL CHECK (status IN ('credited', 'rejected')),
  reason          text NOT NULL DEFAULT '',
  created_at      timestamptz NOT NULL DEFAULT now(),
  CHECK ((status = 'credited') = (reason = ''))
);
