-- birth_month is the student's birth year and month (the first of the
-- month) from the chain's application.submitted event (birth_month), for
-- the age_stage_mismatch flag. NULL when the event had none (written
-- before it was added) and for imported history: such a record's age is
-- not checked.
ALTER TABLE records ADD COLUMN birth_month date;
