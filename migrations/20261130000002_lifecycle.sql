-- Message lifecycle: edits, tombstones, replies, forwards, reactions, pins; a per-chat
-- version for lifecycle events; applied lifecycle commands; chat changes to announce.
ALTER TABLE messages
    ADD COLUMN edited_at            timestamptz,
    ADD COLUMN deleted_at           timestamptz,
    ADD COLUMN reply_to_id          uuid REFERENCES messages(id),
    ADD COLUMN forwarded_chat_id    uuid,
    ADD COLUMN forwarded_message_id uuid,
    ADD COLUMN forwarded_sender_id  uuid;
CREATE INDEX messages_replies ON messages (reply_to_id, sequence) WHERE reply_to_id IS NOT NULL;

CREATE TABLE message_reactions (
    message_id uuid NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    emoji      text NOT NULL,
    user_id    uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, emoji, user_id)
);

CREATE TABLE chat_pins (
    chat_id    uuid NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    message_id uuid NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    pinned_by  uuid NOT NULL,
    pinned_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chat_id, message_id)
);

-- Bumped by every lifecycle command and chat change the worker applies: the events'
-- per-chat order, by which a gateway drops a re-notified event.
ALTER TABLE chats ADD COLUMN version bigint NOT NULL DEFAULT 0;

-- Lifecycle commands already applied (by broker message id), with their effect: a
-- redelivered command is re-announced, never applied twice.
CREATE TABLE applied_commands (
    id         uuid PRIMARY KEY,
    chat_id    uuid NOT NULL,
    effect     jsonb NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX applied_commands_at ON applied_commands (applied_at);

-- Chat changes committed but not yet handed to the broker (the announcement outbox).
CREATE TABLE chat_outbox (
    id         uuid PRIMARY KEY,
    chat_id    uuid NOT NULL,
    command    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_outbox_created ON chat_outbox (created_at);
