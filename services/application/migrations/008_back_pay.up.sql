-- Back-pay (补发) of missed students (docs/data-comparison.md): the data
-- office's verified missed-student clues arrive as back-pay orders
-- (datacomparison.back_pay_opened.v1); a school fulfils each once with an
-- application that names the order's clue.
CREATE TABLE back_pay_orders (
  clue_id           uuid        PRIMARY KEY,
  school_code       text        NOT NULL,
  program_code      text        NOT NULL,
  term              text        NOT NULL,
  -- Keyed hash of the student's ID number, under the hashing key the data
  -- office's event carried it in (the service's current key when it was
  -- sent); the submission compares it under every key in use.
  student_id_hash   text        NOT NULL,
  student_id_masked text        NOT NULL,
  estimated_fen     bigint      NOT NULL CHECK (estimated_fen >= 0),
  opened_at         timestamptz NOT NULL,
  -- The event that opened the order, for the record.
  event_id          text        NOT NULL,
  -- The application that fulfils it; NULL while open. Set once.
  application_id    uuid        UNIQUE
);
CREATE INDEX back_pay_orders_school ON back_pay_orders (school_code, (application_id IS NOT NULL), opened_at, clue_id);

CREATE FUNCTION back_pay_orders_guard() RETURNS trigger LANGUAGE plpgsql
  SET search_path FROM CURRENT AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'back-pay orders are kept (DELETE refused)';
  END IF;
  IF OLD.application_id IS NOT NULL OR NEW.application_id IS NULL
     OR (NEW.clue_id, NEW.school_code, NEW.program_code, NEW.term, NEW.student_id_hash, NEW.student_id_masked,
         NEW.estimated_fen, NEW.opened_at, NEW.event_id)
        IS DISTINCT FROM
        (OLD.clue_id, OLD.school_code, OLD.program_code, OLD.term, OLD.student_id_hash, OLD.student_id_masked,
         OLD.estimated_fen, OLD.opened_at, OLD.event_id) THEN
    RAISE EXCEPTION 'a back-pay order only ever gets its application, once';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER back_pay_orders_guard BEFORE UPDATE OR DELETE ON back_pay_orders
  FOR EACH ROW EXECUTE FUNCTION back_pay_orders_guard();

-- The application that is back-pay names its order's clue.
ALTER TABLE applications ADD COLUMN back_pay_clue_id text NOT NULL DEFAULT '';
CREATE UNIQUE INDEX applications_back_pay_once ON applications (back_pay_clue_id) WHERE back_pay_clue_id <> '';
