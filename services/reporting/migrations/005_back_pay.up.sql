-- Back-pay (补发): an application that fulfils a missed student's back-pay
-- order names its clue (application.submitted.v1 back_pay_clue_id); the
-- report's data-comparison section counts what was back-paid.
ALTER TABLE applications ADD COLUMN back_pay_clue_id text NOT NULL DEFAULT '';
CREATE INDEX applications_back_pay ON applications (application_id) WHERE back_pay_clue_id <> '';
