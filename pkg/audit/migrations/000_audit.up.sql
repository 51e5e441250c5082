-- Refused attempts (separation of duties, scoping) and other security facts.
CREATE TABLE audit_log (
  id          bigserial   PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  user_id     text        NOT NULL,
  role        text        NOT NULL,
  org         text        NOT NULL,
  method      text        NOT NULL,
  outcome     text        NOT NULL,
  rule        text        NOT NULL DEFAULT '',
  detail      text        NOT NULL DEFAULT '',
  trace_id    text        NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_user ON audit_log (user_id, at);
