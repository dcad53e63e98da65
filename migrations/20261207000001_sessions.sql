-- Sessions: one per login (a device). Its id is the `sid` claim of its access tokens
-- and the `family_id` of its refresh tokens (rotation keeps the session).
CREATE TABLE sessions (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    device_name  text NOT NULL,
    ip           text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE INDEX sessions_user ON sessions (user_id, created_at) WHERE revoked_at IS NULL;
-- The denylist is re-seeded from here after Redis lost it.
CREATE INDEX sessions_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
