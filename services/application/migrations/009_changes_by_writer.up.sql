-- The change feed is written by the store beside each trail entry (one more
-- COPY or one more CTE in the same statement), not by a statement trigger on
-- trail: the trigger looked up every new entry's application (for its
-- school) and the entry before it (for the previous status), which the
-- writer already holds, and measured in a load run it took 80 s of the
-- consumer's 290 s in PostgreSQL (pg_stat_statements, docs/performance.md,
-- "The application consumer's lag"). Nothing else changes: the rows, their
-- order (xid, seq) and the reader's snapshot rule are as in 007.
DROP TRIGGER trail_feeds_changes ON trail;
DROP FUNCTION changes_from_trail();

-- The trail's recorded_at is its transaction's now(); the feed's is too.
ALTER TABLE changes ALTER COLUMN recorded_at SET DEFAULT now();
