-- Room for more heap-only (HOT) updates: an application row (about 660
-- bytes) is updated six to eight times on its way to PAID, and at
-- fillfactor 80 only about two new versions fit beside it before an update
-- has to move the row to another page and insert into every index. Measured
-- in a 30,000-application load run at 80: 84,007 of 164,041 updates HOT
-- (docs/performance.md, "The application consumer's lag"). New pages keep
-- half free; existing pages keep what they have until rewritten.
ALTER TABLE applications SET (fillfactor = 50);
