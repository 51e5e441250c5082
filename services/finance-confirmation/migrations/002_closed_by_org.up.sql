-- Who closed a batch is compared with who confirms it: the same user of the
-- same organisation may not do both. Batches closed before this column
-- compare the user alone.
ALTER TABLE batches ADD COLUMN closed_by_org text NOT NULL DEFAULT '';
