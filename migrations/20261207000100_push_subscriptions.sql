-- Push subscriptions (issue 26): a device's Web Push subscription or FCM registration
-- token, owned by a user and registered under the session that sent it. Revoking a
-- session deletes the subscriptions registered under it (db::sessions::revoke, same
-- transaction); deleting the account deletes them all (the user row stays,
-- anonymized: service::account_deletion). The same endpoint (or token) registered
-- again updates its row: a browser endpoint belongs to whoever registered it last.
CREATE TABLE push_subscriptions (
    id              uuid PRIMARY KEY,
    user_id         uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    session_id      uuid REFERENCES sessions(id) ON DELETE SET NULL,
    kind            text NOT NULL CHECK (kind IN ('webpush', 'fcm')),
    endpoint        text NOT NULL,      -- Web Push endpoint URL, or the FCM registration token
    p256dh          text,               -- Web Push only: base64url, 65-byte uncompressed P-256 point
    auth            text,               -- Web Push only: base64url, 16 bytes
    expiration_time timestamptz,        -- Web Push only, as the browser gave it
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, endpoint)
);
CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id);
CREATE INDEX push_subscriptions_session ON push_subscriptions (session_id) WHERE session_id IS NOT NULL;

-- Mentions still push in a muted chat (muted_until in the future) unless this is set.
ALTER TABLE chat_participants ADD COLUMN mute_mentions boolean NOT NULL DEFAULT false;
