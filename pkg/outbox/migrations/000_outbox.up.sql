-- The outbox: events written in the same transaction as the state change
-- they describe, relayed to JetStream in id order. Rows are kept after
-- publishing: the outbox is the source of truth and can be re-published.
CREATE TABLE outbox (
  id            bigserial PRIMARY KEY,
  event_id      uuid        NOT NULL UNIQUE,
  subject       text        NOT NULL,
  payload       bytea       NOT NULL,
  traceparent   text        NOT NULL DEFAULT '',
  tracestate    text        NOT NULL DEFAULT '',
  created_at    timestamptz NOT NULL DEFAULT now(),
  published_at  timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- The inbox: IDs of the events this service has applied, written in the
-- same transaction as their effect, so each event takes effect at most once.
CREATE TABLE inbox (
  event_id     uuid        PRIMARY KEY,
  subject      text        NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now()
);
