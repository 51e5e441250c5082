-- The anchor (docs/architecture.md, Anchored trail): a Merkle tree in the
-- manner of RFC 6962 over the hashes of all trail entries, whose signed
-- heads (checkpoints) are published outside this schema.
--
-- Each trail entry records the transaction that wrote it, in the same
-- statement as the entry. The sequencer adds to the tree the entries of the
-- transactions that ended below its snapshot's xmin, so that no entry can
-- commit later into a part of the tree already signed, and no writer waits
-- on a global counter.
ALTER TABLE trail ADD COLUMN tx xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX trail_tx ON trail (tx);

-- The tree's leaves, in order: leaf i is RFC 6962's leaf hash of the
-- 32-byte hash of one trail entry. Insert-only.
CREATE TABLE trail_leaves (
  leaf_index     bigint NOT NULL PRIMARY KEY CHECK (leaf_index >= 0),
  application_id uuid   NOT NULL,
  position       bigint NOT NULL,
  leaf_hash      bytea  NOT NULL CHECK (length(leaf_hash) = 32),
  CONSTRAINT trail_leaves_entry_once UNIQUE (application_id, position)
);

-- The checkpoints this service signed, each also published to the
-- JetStream stream AID_CHECKPOINTS (the copy that counts: it is outside this
-- schema). tx_bound: every entry of a transaction below it is in the tree;
-- frontier: the roots of the tree's perfect subtrees (a compact range), so
-- the next checkpoint hashes only the new leaves. Insert-only.
CREATE TABLE trail_checkpoints (
  id         bigserial   PRIMARY KEY,
  tree_size  bigint      NOT NULL CHECK (tree_size >= 0),
  root_hash  bytea       NOT NULL CHECK (length(root_hash) = 32),
  signed_at  timestamptz NOT NULL,
  key_id     text        NOT NULL,
  signature  bytea       NOT NULL,
  tx_bound   xid8        NOT NULL,
  frontier   bytea[]     NOT NULL,
  reason     text        NOT NULL,
  event_id   uuid        NOT NULL UNIQUE
);

CREATE FUNCTION anchor_insert_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the trail anchor (%) is insert-only (% refused)', TG_TABLE_NAME, TG_OP;
END;
$$;
CREATE TRIGGER trail_leaves_no_update BEFORE UPDATE OR DELETE ON trail_leaves
  FOR EACH ROW EXECUTE FUNCTION anchor_insert_only();
CREATE TRIGGER trail_leaves_no_truncate BEFORE TRUNCATE ON trail_leaves
  FOR EACH STATEMENT EXECUTE FUNCTION anchor_insert_only();
CREATE TRIGGER trail_checkpoints_no_update BEFORE UPDATE OR DELETE ON trail_checkpoints
  FOR EACH ROW EXECUTE FUNCTION anchor_insert_only();
CREATE TRIGGER trail_checkpoints_no_truncate BEFORE TRUNCATE ON trail_checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION anchor_insert_only();
