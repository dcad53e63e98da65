-- Mentions and their notifications; incoming webhooks (a hook posts as its own
-- sender, so a message's sender is no longer always a user).
ALTER TABLE messages
    ADD COLUMN mentions uuid[] NOT NULL DEFAULT '{}',
    ADD COLUMN bot_name text,
    DROP CONSTRAINT messages_sender_id_fkey;

-- One notification per (message, mentioned user), ever: its id is derived from both,
-- so a redelivered or re-edited message cannot notify twice.
CREATE TABLE notifications (
    id         uuid PRIMARY KEY,
    -- Insertion order: a batch's notifications share a time, not an order.
    seq        bigint GENERATED ALWAYS AS IDENTITY,
    user_id    uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    type       text NOT NULL,
    chat_id    uuid NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    message_id uuid NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    sender_id  uuid NOT NULL,
    excerpt    text NOT NULL,
    created_at timestamptz NOT NULL,
    read_at    timestamptz,
    UNIQUE (message_id, user_id)
);
CREATE INDEX notifications_by_user ON notifications (user_id, seq DESC);
CREATE INDEX notifications_unread ON notifications (user_id, seq DESC) WHERE read_at IS NULL;

CREATE TABLE chat_hooks (
    id         uuid PRIMARY KEY,
    chat_id    uuid NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    name       text NOT NULL,
    token_hash bytea NOT NULL,
    created_by uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE INDEX chat_hooks_by_chat ON chat_hooks (chat_id, created_at) WHERE deleted_at IS NULL;
