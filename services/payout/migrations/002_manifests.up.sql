-- Finance's signed batch manifests (pkg/manifest): payout pays an order only
-- when its batch's manifest is verified and lists the order's application
-- with its amount. Every table here is append-only for payout's own role
-- (AppendOnly in migrations.go): what was verified cannot be rewritten by
-- the service's login.

-- The signed header, stored once its signature verified under a known key.
CREATE TABLE manifests (
  batch_id        uuid        PRIMARY KEY,
  key_id          text        NOT NULL,
  program_code    text        NOT NULL,
  term            text        NOT NULL,
  funding_source  text        NOT NULL,
  control_count   bigint      NOT NULL CHECK (control_count > 0),
  control_sum_fen bigint      NOT NULL CHECK (control_sum_fen > 0),
  part_size       integer     NOT NULL CHECK (part_size > 0),
  part_digests    bytea[]     NOT NULL,
  signature       bytea       NOT NULL,
  source_event_id uuid        NOT NULL,
  received_at     timestamptz NOT NULL DEFAULT now()
);

-- The parts received, each checked against its digest in the header.
CREATE TABLE manifest_parts (
  batch_id        uuid        NOT NULL REFERENCES manifests,
  part_index      integer     NOT NULL CHECK (part_index >= 0),
  item_count      integer     NOT NULL CHECK (item_count > 0),
  sum_fen         bigint      NOT NULL CHECK (sum_fen > 0),
  source_event_id uuid        NOT NULL,
  received_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (batch_id, part_index)
);

-- The items of the parts; the primary key is the per-order lookup.
CREATE TABLE manifest_items (
  batch_id       uuid    NOT NULL,
  application_id uuid    NOT NULL,
  -- The first order's payment ID; a reissue comes under a new one.
  payment_id     uuid,
  amount_fen     bigint  NOT NULL CHECK (amount_fen > 0),
  part_index     integer NOT NULL,
  PRIMARY KEY (batch_id, application_id),
  FOREIGN KEY (batch_id, part_index) REFERENCES manifest_parts
);

-- A manifest whose parts have all arrived and add up to the header's
-- control count and sum: only its orders are paid.
CREATE TABLE manifests_verified (
  batch_id    uuid        PRIMARY KEY REFERENCES manifests,
  verified_at timestamptz NOT NULL DEFAULT now()
);
