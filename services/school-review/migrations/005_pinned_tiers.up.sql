-- The policy a submission was computed under (application.submitted's
-- policy_version and register_version; 0 for events from before policies
-- were pinned) and, for tiered programs, its amount per hardship level:
-- the school's approval takes the amount from here, never from a later
-- policy. 0 fen at a level means the pinned policy has no such tier.
ALTER TABLE review
  ADD COLUMN policy_version                bigint NOT NULL DEFAULT 0 CHECK (policy_version >= 0),
  ADD COLUMN register_version              bigint NOT NULL DEFAULT 0 CHECK (register_version >= 0),
  ADD COLUMN tier_especially_difficult_fen bigint NOT NULL DEFAULT 0 CHECK (tier_especially_difficult_fen >= 0),
  ADD COLUMN tier_difficult_fen            bigint NOT NULL DEFAULT 0 CHECK (tier_difficult_fen >= 0),
  ADD COLUMN tier_generally_difficult_fen  bigint NOT NULL DEFAULT 0 CHECK (tier_generally_difficult_fen >= 0);
