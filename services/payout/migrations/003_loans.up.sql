-- The loan book. A payment of a bank_loan batch (生源地信用助学贷款) credits
-- no card: the bank opens a loan contract for it, recorded here in the same
-- transaction that settles the payment PAID. Finance officers then record
-- what the bank reports repaid and recovered against each contract. Both
-- tables are append-only for payout's own role (AppendOnly in
-- migrations.go): a contract or a repayment, once recorded, is never
-- rewritten; what is outstanding is the contract's amount less its rows.

CREATE TABLE loan_contracts (
  contract_number text        PRIMARY KEY CHECK (contract_number <> '' AND length(contract_number) <= 64),
  -- One contract per payment: the bank opens it under the payment ID.
  payment_id      uuid        NOT NULL UNIQUE,
  application_id  uuid        NOT NULL,
  batch_id        uuid        NOT NULL,
  school_code     text        NOT NULL,
  program_code    text        NOT NULL,
  -- The aid term the loan was granted for, e.g. 2017-autumn.
  term            text        NOT NULL,
  amount_fen      bigint      NOT NULL CHECK (amount_fen > 0),
  -- The term of the loan in years, as the bank set it.
  years           integer     NOT NULL CHECK (years BETWEEN 1 AND 30),
  opened_at       timestamptz NOT NULL
);
CREATE INDEX loan_contracts_by_term ON loan_contracts (term, contract_number);
CREATE INDEX loan_contracts_by_school ON loan_contracts (school_code, contract_number);

CREATE TABLE loan_repayments (
  repayment_id    uuid        PRIMARY KEY,
  contract_number text        NOT NULL REFERENCES loan_contracts,
  kind            text        NOT NULL CHECK (kind IN ('REPAYMENT', 'RECOVERY')),
  amount_fen      bigint      NOT NULL CHECK (amount_fen > 0),
  -- The bank's reference of the transfer: recording is idempotent by it.
  bank_reference  text        NOT NULL UNIQUE,
  paid_on         date        NOT NULL,
  reason          text        NOT NULL DEFAULT '',
  recorded_by     text        NOT NULL,
  recorded_at     timestamptz NOT NULL
);
CREATE INDEX loan_repayments_by_contract ON loan_repayments (contract_number, recorded_at);
