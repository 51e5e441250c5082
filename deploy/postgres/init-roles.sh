#!/bin/sh
# Compose: the postgres image runs this once, when it creates the database
# volume. The passwords come from the AID_DB_*_PASSWORD variables
# (deploy/README.md); roles.sql is the same script operators run by hand.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v db="$POSTGRES_DB" \
  -v owner_password="$AID_DB_OWNER_PASSWORD" \
  -v application_password="$AID_DB_APPLICATION_PASSWORD" \
  -v school_review_password="$AID_DB_SCHOOL_REVIEW_PASSWORD" \
  -v bureau_review_password="$AID_DB_BUREAU_REVIEW_PASSWORD" \
  -v finance_confirmation_password="$AID_DB_FINANCE_CONFIRMATION_PASSWORD" \
  -v payout_password="$AID_DB_PAYOUT_PASSWORD" \
  -v data_comparison_password="$AID_DB_DATA_COMPARISON_PASSWORD" \
  -v reporting_password="$AID_DB_REPORTING_PASSWORD" \
  -v console_password="$AID_DB_CONSOLE_PASSWORD" \
  -f /etc/aid/roles.sql
