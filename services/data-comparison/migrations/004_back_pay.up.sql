-- Back-pay (补发) of missed students: verifying a missed-student clue orders
-- back-pay (datacomparison.back_pay_opened.v1); the school's application
-- that fulfils the order names the clue (application.submitted.v1
-- back_pay_clue_id), and its payment closes the back-pay. The clue keeps
-- where its back-pay stands; each step is on the clue's trail.
ALTER TABLE clues
  ADD COLUMN back_pay_status text NOT NULL DEFAULT ''
    CHECK (back_pay_status IN ('', 'opened', 'applied', 'paid')),
  ADD COLUMN back_pay_application_id text NOT NULL DEFAULT '';
ALTER TABLE records ADD COLUMN back_pay_clue_id text NOT NULL DEFAULT '';
