-- Courier schema: users, refresh tokens, chats, participants, messages.

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    username      text NOT NULL UNIQUE,
    display_name  text,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Refresh tokens are stored hashed; a family is one login's chain of rotations.
CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    family_id   uuid NOT NULL,
    token_hash  bytea NOT NULL UNIQUE,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE chats (
    id              uuid PRIMARY KEY,
    type            text NOT NULL CHECK (type IN ('direct', 'group')),
    title           text,
    -- "<lower uuid>:<higher uuid>" for direct chats: one direct chat per pair.
    direct_key      text UNIQUE,
    last_sequence   bigint NOT NULL DEFAULT 0,
    last_message_at timestamptz,
    created_by      uuid NOT NULL REFERENCES users(id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((type = 'direct') = (direct_key IS NOT NULL))
);

CREATE TABLE chat_participants (
    chat_id            uuid NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    user_id            uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role               text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    joined_at          timestamptz NOT NULL DEFAULT now(),
    last_read_sequence bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, user_id)
);
CREATE INDEX chat_participants_user ON chat_participants (user_id);

CREATE TABLE messages (
    id                uuid PRIMARY KEY,
    chat_id           uuid NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    sender_id         uuid NOT NULL REFERENCES users(id),
    client_message_id uuid NOT NULL,
    broker_message_id uuid NOT NULL,
    content           text NOT NULL,
    message_type      text NOT NULL DEFAULT 'text',
    sequence          bigint NOT NULL CHECK (sequence > 0),
    sent_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (chat_id, sequence),
    UNIQUE (chat_id, sender_id, client_message_id)
);
