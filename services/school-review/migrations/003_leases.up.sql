-- Leases of the work that must have one owner at a time (the public-notice
-- timer), with a fencing epoch: see pkg/lease. A normal table of the schema,
-- so the service's role may read and update it (db.Grant).
CREATE TABLE IF NOT EXISTS leases (
  name       text        PRIMARY KEY,
  owner      text        NOT NULL,
  epoch      bigint      NOT NULL,
  expires_at timestamptz NOT NULL
);
