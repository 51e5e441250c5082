-- Loan contracts the simulated bank opened (生源地信用助学贷款): one row per
-- idempotency key, written once. A loan credits no card: the credits table
-- never sees it.
CREATE TABLE loans (
  idempotency_key  text PRIMARY KEY,
  contract_number  text NOT NULL UNIQUE,
  -- A simulator of an external bank: it keeps the borrower in clear, as a bank would.
  borrower_name    text NOT NULL,
  card_number      text NOT NULL,
  amount_fen       bigint NOT NULL CHECK (amount_fen > 0),
  study_years_left integer NOT NULL CHECK (study_years_left >= 0),
  years            integer NOT NULL CHECK (years > 0),
  created_at       timestamptz NOT NULL DEFAULT now()
);
