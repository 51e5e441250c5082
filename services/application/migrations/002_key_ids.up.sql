-- Keys rotate (docs/operations.md, Keys): each ID hash is stored with the ID
-- of the hashing key it was computed under (sealed values name their key in
-- their own header).
ALTER TABLE applications ADD COLUMN student_id_hash_key text NOT NULL DEFAULT '';
ALTER TABLE applications ALTER COLUMN student_id_hash_key DROP DEFAULT;

-- The hashing keys applications are hashed under: the current one, which
-- new applications are hashed under, and while a rotation is under way the
-- older ones, which duplicate checks also look under. Submissions read it
-- under a shared advisory lock that a key change takes exclusively, so no
-- submission hashes under a key that is no longer current.
CREATE TABLE hash_keys (
  key_id  text        PRIMARY KEY,
  current boolean     NOT NULL,
  since   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX hash_keys_one_current ON hash_keys (current) WHERE current;
