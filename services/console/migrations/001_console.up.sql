-- A signed-in user's session. The cookie holds a random token; only its
-- SHA-256 is stored, so a copy of this table signs nobody in.
CREATE TABLE sessions (
  token_sha256 bytea       PRIMARY KEY,
  user_id      text        NOT NULL,
  role         text        NOT NULL,
  org          text        NOT NULL,
  -- How the user signed in: "oidc" or "dev" (development only).
  method       text        NOT NULL,
  csrf         text        NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_seen    timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  -- Set on sign-out or idle expiry; an ended session never comes back.
  ended_at     timestamptz,
  end_reason   text        NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id, created_at);

-- An uploaded list between its check and its submission. The file is
-- sealed with a key that only the uploader's browser holds (an HttpOnly
-- cookie scoped to the upload), so the rows' ID and card numbers are not
-- readable from the database.
CREATE TABLE uploads (
  id          uuid        PRIMARY KEY,
  user_id     text        NOT NULL,
  org         text        NOT NULL,
  term        text        NOT NULL,
  file_name   text        NOT NULL,
  sealed      bytea       NOT NULL,
  rows        integer     NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  submitted_at timestamptz
);

-- Long work (checking or submitting an upload, a bulk decision) and how
-- far it is; the page polls it.
CREATE TABLE jobs (
  id          uuid        PRIMARY KEY,
  kind        text        NOT NULL,
  user_id     text        NOT NULL,
  org         text        NOT NULL,
  subject     text        NOT NULL DEFAULT '',
  total       integer     NOT NULL,
  done        integer     NOT NULL DEFAULT 0,
  state       text        NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done', 'failed')),
  result      jsonb       NOT NULL DEFAULT '{}',
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_user ON jobs (user_id, created_at DESC);
