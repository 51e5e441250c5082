-- A school may withdraw an application before its review decides it.
ALTER TABLE review DROP CONSTRAINT review_state_check;
ALTER TABLE review ADD CONSTRAINT review_state_check
  CHECK (state IN ('PENDING', 'IN_NOTICE', 'REJECTED', 'PASSED', 'WITHDRAWN'));
