-- The PostgreSQL roles of the platform (docs/operations.md "Database roles").
-- Run once per database as a superuser (or a role with CREATEROLE that owns
-- the database), and again after adding a service; it is idempotent:
--
--   psql -v ON_ERROR_STOP=1 -d studentaid -v db=studentaid \
--        -v owner_password=... -v application_password=... \
--        -v school_review_password=... -v bureau_review_password=... \
--        -v finance_confirmation_password=... -v payout_password=... \
--        -v data_comparison_password=... \
--        -v reporting_password=... -v console_password=... \
--        -f deploy/postgres/roles.sql
--
-- aid_owner owns the services' (and the console's) schemas and runs `<service> migrate`; each
-- service logs in as its own role, which the migrate step grants the rows of
-- its schema only (the trail and audit_log insert and select only). No role
-- here is a superuser, creates roles or databases, or is a member of another.

SELECT format('CREATE ROLE %I', r)
  FROM unnest(ARRAY['aid_owner', 'aid_application', 'aid_school_review', 'aid_bureau_review',
                    'aid_finance_confirmation', 'aid_payout', 'aid_data_comparison', 'aid_reporting', 'aid_console']) AS r
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) \gexec

ALTER ROLE aid_owner                LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION PASSWORD :'owner_password';
ALTER ROLE aid_application          LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION PASSWORD :'application_password';
ALTER ROLE aid_school_review        LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION PASSWORD :'school_review_password';
ALTER ROLE aid_bureau_review        LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION PASSWORD :'bureau_review_password';
ALTER ROLE aid_finance_confirmation LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION PASSWORD :'finance_confirmation_password';
ALTER ROLE aid_payout               LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION PASSWORD :'payout_password';
ALTER ROLE aid_data_comparison      LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION PASSWORD :'data_comparison_password';
ALTER ROLE aid_reporting            LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION PASSWORD :'reporting_password';
ALTER ROLE aid_console              LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION PASSWORD :'console_password';

-- Only these roles connect; only the owner creates schemas; nobody creates
-- objects in public (PostgreSQL 15 already revokes it; older ones do not).
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, CREATE ON DATABASE :"db" TO aid_owner;
GRANT CONNECT ON DATABASE :"db" TO aid_application, aid_school_review, aid_bureau_review, aid_finance_confirmation, aid_payout, aid_data_comparison, aid_reporting, aid_console;
-- data-comparison stages each reference import in a temporary table of its
-- transaction (pg_temp only; no object in any schema): docs/data-comparison.md.
GRANT TEMPORARY ON DATABASE :"db" TO aid_data_comparison;
\connect :"db"
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
