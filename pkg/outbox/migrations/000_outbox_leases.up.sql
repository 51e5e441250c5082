-- Leases of the work that must have one owner at a time, with a fencing
-- epoch (pkg/lease): in every service the outbox relay, so that one replica
-- publishes the outbox in id order in large frames; in school-review also
-- the public-notice timer. IF NOT EXISTS: school-review made the table
-- before the platform did (its 003_leases).
CREATE TABLE IF NOT EXISTS leases (
  name       text        PRIMARY KEY,
  owner      text        NOT NULL,
  epoch      bigint      NOT NULL,
  expires_at timestamptz NOT NULL
);
