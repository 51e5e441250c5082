-- The review-time flag kinds (data-comparison ListFlags, pkg/catalog
-- FlagKind) the bureau reviewer was shown when deciding: recorded with the
-- decision and carried in its event; cleared when finance sends the item
-- back for a new decision.
ALTER TABLE review ADD COLUMN flags_shown text[] NOT NULL DEFAULT '{}';
