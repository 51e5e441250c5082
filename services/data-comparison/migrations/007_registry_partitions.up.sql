-- One partition per registry version (issue 13, docs/performance.md "Data
-- comparison at scale"; docs/data-comparison.md "Imports").
--
-- registry_rows is list-partitioned by import_id. An import of the registry
-- no longer inserts its rows into one index far larger than the buffer cache
-- (through a temporary table and a sort): begin_registry_partition makes a
-- fresh table for the version, with no index, the import COPYs its rows into
-- it (FREEZE: the table is new in the import's transaction), and
-- finish_registry_partition builds its primary key in one sort and attaches
-- it. Both run as the schema's owner (SECURITY DEFINER), so the service's
-- role still creates nothing itself: it may call the two functions, which
-- make only a table named after an import of the registry that has no rows
-- yet, and it inserts into that table (the owner's default privileges give
-- the service's role SELECT and INSERT on tables the owner makes; migrate's
-- Grant gives it the rest after the next migration). A refused import rolls
-- the table back with the rest of its transaction.
--
-- Only the schema's owner and the service's role have USAGE on the schema
-- (db.Grant revokes the rest from PUBLIC), so only they can call the
-- functions.

ALTER TABLE registry_rows RENAME TO registry_rows_v0;
ALTER TABLE registry_rows_v0 RENAME CONSTRAINT registry_rows_pkey TO registry_rows_v0_pkey;

CREATE TABLE registry_rows (
    import_id    bigint NOT NULL,
    line         bigint NOT NULL,
    id_hash      text COLLATE "C" NOT NULL,
    household_id text NOT NULL,
    name_hash    text NOT NULL,
    id_masked    text NOT NULL,
    township     text NOT NULL
) PARTITION BY LIST (import_id);

-- registry_rows itself has no index: each partition has its own primary
-- key, (id_hash, line) for a version's partition (every look-up names the
-- version, which picks the partition, and the person). Leaving out the
-- version's id, the same in every row of a partition, lets the sort that
-- builds the key compare the hashes' abbreviated keys instead of tying on
-- the first column and comparing whole hashes every time.
--
-- The rows imported before this migration stay where they are, as one
-- partition holding all their versions with its primary key (import_id,
-- id_hash, line) (or go, when there are none).
DO $$
DECLARE ids text;
BEGIN
  SELECT string_agg(DISTINCT import_id::text, ', ') INTO ids FROM registry_rows_v0;
  IF ids IS NULL THEN
    DROP TABLE registry_rows_v0;
  ELSE
    EXECUTE format('ALTER TABLE registry_rows ATTACH PARTITION registry_rows_v0 FOR VALUES IN (%s)', ids);
  END IF;
END;
$$;

-- The functions run with the search path they are made with, the schema
-- and then pg_temp, named last: unnamed, pg_temp would come first, and a
-- caller with TEMPORARY could shadow imports or registry_rows with a
-- temporary table of its own.
SELECT set_config('search_path', quote_ident(current_schema()) || ', pg_temp', true);

-- begin_registry_partition makes the empty, unindexed table of a registry
-- import's rows, named registry_rows_<import id>, and returns its name. The
-- import must be a registry import with no rows yet and no table.
CREATE FUNCTION begin_registry_partition(p_import bigint) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  t text := 'registry_rows_' || p_import;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM imports WHERE id = p_import AND kind = 'poverty_registry' AND rows = 0) THEN
    RAISE EXCEPTION 'import % is not a registry import without rows', p_import;
  END IF;
  EXECUTE format('CREATE TABLE %I (LIKE registry_rows INCLUDING DEFAULTS, CONSTRAINT %I CHECK (import_id = %s))',
                 t, t || '_import', p_import);
  RETURN t;
END;
$$;

-- finish_registry_partition builds the primary key (id_hash, line) of the
-- table begin_registry_partition made (one sort, in memory up to 512 MB),
-- attaches it as the partition of its import and analyzes it. The check constraint proves
-- every row belongs there, so ATTACH does not scan the table; it takes a
-- SHARE UPDATE EXCLUSIVE lock on registry_rows, which readers do not wait
-- for.
CREATE FUNCTION finish_registry_partition(p_import bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT SET maintenance_work_mem = '512MB' AS $$
DECLARE
  t text := 'registry_rows_' || p_import;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM imports WHERE id = p_import AND kind = 'poverty_registry' AND rows = 0)
     OR NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = to_regclass(quote_ident(t)) AND NOT c.relispartition) THEN
    RAISE EXCEPTION 'import % has no unattached registry table', p_import;
  END IF;
  EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY (id_hash, line)', t, t || '_pkey');
  EXECUTE format('ALTER TABLE registry_rows ATTACH PARTITION %I FOR VALUES IN (%s)', t, p_import);
  -- Statistics from the start (a sample of 30,000 rows), so that the flags'
  -- and comparisons' plans over the new version need not wait for
  -- autovacuum; the service's role may not ANALYZE a table it does not own.
  EXECUTE format('ANALYZE %I', t);
END;
$$;
