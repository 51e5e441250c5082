-- The aid policy as data (docs/policy.md): every version of the program
-- policy ('programs') and of the school register ('schools'), drafts
-- included. A version is drafted by one policy administrator and published
-- by another's approval; the trigger below keeps a published version, and a
-- draft's document, from ever changing, and refuses deletes.
CREATE TABLE policy_versions (
  kind           text        NOT NULL CHECK (kind IN ('programs', 'schools')),
  number         bigint      NOT NULL CHECK (number >= 1),
  status         text        NOT NULL CHECK (status IN ('draft', 'published')),
  effective_from text        NOT NULL,
  corrects       bigint      NOT NULL DEFAULT 0,
  summary        text        NOT NULL,
  document       bytea       NOT NULL,
  sha256         text        NOT NULL,
  drafted_by     text        NOT NULL,
  drafted_at     timestamptz NOT NULL,
  approved_by    text        NOT NULL DEFAULT '',
  approved_at    timestamptz,
  PRIMARY KEY (kind, number),
  CONSTRAINT policy_versions_published CHECK (
    (status = 'draft' AND approved_by = '' AND approved_at IS NULL) OR
    (status = 'published' AND approved_by <> '' AND approved_at IS NOT NULL)),
  -- Two people: the approver never drafted it (the seed is the one
  -- version both drafted and approved by the system).
  CONSTRAINT policy_versions_two_people CHECK (status = 'draft' OR approved_by <> drafted_by OR drafted_by = 'seed')
);
-- One published version per kind and effective term and correction chain:
-- two published versions that neither corrects are an overlap.
CREATE UNIQUE INDEX policy_versions_one_start ON policy_versions (kind, effective_from)
  WHERE status = 'published' AND corrects = 0;
CREATE UNIQUE INDEX policy_versions_one_correction ON policy_versions (kind, corrects)
  WHERE status = 'published' AND corrects <> 0;

CREATE FUNCTION policy_versions_guard() RETURNS trigger LANGUAGE plpgsql
  SET search_path FROM CURRENT AS $$
BEGIN
  IF TG_OP <> 'UPDATE' THEN
    RAISE EXCEPTION 'policy versions are kept forever (% refused)', TG_OP;
  END IF;
  IF OLD.status <> 'draft' OR NEW.status <> 'published'
     OR NEW.kind <> OLD.kind OR NEW.number <> OLD.number
     OR NEW.effective_from <> OLD.effective_from OR NEW.corrects <> OLD.corrects
     OR NEW.summary <> OLD.summary OR NEW.document <> OLD.document OR NEW.sha256 <> OLD.sha256
     OR NEW.drafted_by <> OLD.drafted_by OR NEW.drafted_at <> OLD.drafted_at THEN
    RAISE EXCEPTION 'a policy version changes only once, from draft to published; % %', OLD.kind, OLD.number;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER policy_versions_guard BEFORE UPDATE OR DELETE ON policy_versions
  FOR EACH ROW EXECUTE FUNCTION policy_versions_guard();
CREATE TRIGGER policy_versions_no_truncate BEFORE TRUNCATE ON policy_versions
  FOR EACH STATEMENT EXECUTE FUNCTION policy_versions_guard();

-- Each application's amount is pinned to the versions it was computed
-- under. 0: submitted before the policy store (the 2017 seed's rules).
ALTER TABLE applications
  ADD COLUMN policy_version   bigint NOT NULL DEFAULT 0,
  ADD COLUMN register_version bigint NOT NULL DEFAULT 0;

