-- The working calendar the public notice counts on (pkg/calendar): per
-- year, the public holidays and the weekend days worked instead (调休).
-- Seeded at start from pkg/calendar's files for each year that has no
-- version yet; the bureau's policy administrator replaces a year with
-- SetWorkingCalendar.

-- Every version of every year, append-only (the service's role may only
-- read and add): who set it, when, why, the year as it then stood and what
-- changed from the version before. Days are [{"date": "YYYY-MM-DD",
-- "name": "国庆节"}, ...].
CREATE TABLE calendar_versions (
  year                 integer     NOT NULL CHECK (year BETWEEN 2000 AND 2100),
  version              bigint      NOT NULL CHECK (version >= 1),
  changed_by           text        NOT NULL,
  changed_by_role      text        NOT NULL,
  changed_by_org       text        NOT NULL,
  changed_at           timestamptz NOT NULL,
  reason               text        NOT NULL,
  holidays             jsonb       NOT NULL,
  working_days         jsonb       NOT NULL,
  holidays_added       jsonb       NOT NULL DEFAULT '[]',
  holidays_removed     jsonb       NOT NULL DEFAULT '[]',
  working_days_added   jsonb       NOT NULL DEFAULT '[]',
  working_days_removed jsonb       NOT NULL DEFAULT '[]',
  PRIMARY KEY (year, version)
);

-- The days of each year's current version: what the notice counts on.
-- Replaced as a whole, with the version row, in one transaction. (No
-- foreign key to calendar_versions: the role may not lock its rows.)
CREATE TABLE calendar_days (
  year    integer NOT NULL,
  day     date    NOT NULL,
  kind    text    NOT NULL CHECK (kind IN ('holiday', 'working_day')),
  name    text    NOT NULL DEFAULT '',
  version bigint  NOT NULL,
  PRIMARY KEY (year, day),
  -- A swapped working day is a Saturday or Sunday (ISO day 6 or 7).
  CHECK (kind <> 'working_day' OR extract(isodow FROM day) IN (6, 7)),
  -- In the year, or the New Year break's lead-in of 29–31 December before.
  CHECK (day BETWEEN make_date(year - 1, 12, 29) AND make_date(year, 12, 31))
);
