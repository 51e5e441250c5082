-- Province scale (issue 13, docs/performance.md "Data comparison at
-- scale").
--
-- Keyed hashes are compared as bytes (COLLATE "C"): they are hex digits, so
-- the order is the same, but sorts, merge joins and B-tree probes use memcmp
-- instead of the locale's strcoll (a sort of a million hashes took 15.6 s
-- under the database's C.UTF-8 and 2.7 s as "C" on this machine). The view
-- over records is dropped and made again around the change.
DROP VIEW paid_records;
ALTER TABLE records ALTER COLUMN student_id_hash TYPE text COLLATE "C";
ALTER TABLE clues ALTER COLUMN student_id_hash TYPE text COLLATE "C",
  ALTER COLUMN natural_key TYPE text COLLATE "C";
CREATE VIEW paid_records AS
    SELECT r.* FROM records r WHERE r.origin = 'chain' AND r.status = 'paid'
    UNION ALL
    SELECT r.* FROM records r JOIN current_imports c ON c.id = r.import_id WHERE r.origin = 'imported';

-- A reference row's import_id no longer references imports: the check ran
-- once per row (a key-share lock on the import's row each time), as costly
-- as the index. Rows are written only by the import that records the
-- version, in its transaction, with its id (adapters.CopyRows).
ALTER TABLE registry_rows DROP CONSTRAINT registry_rows_import_id_fkey;
ALTER TABLE key_person_rows DROP CONSTRAINT key_person_rows_import_id_fkey;
ALTER TABLE roster_rows DROP CONSTRAINT roster_rows_import_id_fkey;
ALTER TABLE death_rows DROP CONSTRAINT death_rows_import_id_fkey;

-- Each reference table has one index, its primary key (import_id, id_hash,
-- line): every look-up names the version and the person, and an import
-- inserts its rows sorted by hash (adapters.CopyRows), so a new version's
-- entries are appended at the right end of the index instead of landing on
-- random pages of it.
ALTER TABLE registry_rows ALTER COLUMN id_hash TYPE text COLLATE "C";
ALTER TABLE registry_rows DROP CONSTRAINT registry_rows_pkey;
DROP INDEX registry_rows_person;
ALTER TABLE registry_rows ADD PRIMARY KEY (import_id, id_hash, line);

ALTER TABLE key_person_rows ALTER COLUMN id_hash TYPE text COLLATE "C";
ALTER TABLE key_person_rows DROP CONSTRAINT key_person_rows_pkey;
DROP INDEX key_person_rows_person;
ALTER TABLE key_person_rows ADD PRIMARY KEY (import_id, id_hash, line);

ALTER TABLE roster_rows ALTER COLUMN id_hash TYPE text COLLATE "C";
ALTER TABLE roster_rows DROP CONSTRAINT roster_rows_pkey;
DROP INDEX roster_rows_person;
ALTER TABLE roster_rows ADD PRIMARY KEY (import_id, id_hash, line);

ALTER TABLE death_rows ALTER COLUMN id_hash TYPE text COLLATE "C";
ALTER TABLE death_rows DROP CONSTRAINT death_rows_pkey;
DROP INDEX death_rows_person;
ALTER TABLE death_rows ADD PRIMARY KEY (import_id, id_hash, line);

-- paid_records' second branch (current imported history) reads imported
-- records by their import instead of scanning every record.
CREATE INDEX records_imported ON records (import_id) WHERE origin = 'imported';
