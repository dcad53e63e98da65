-- Per-user chat settings (PUT /chats/:id/settings): muted until a time, archived.
-- Kept on the participant row, so they go with the membership, and the push service
-- reads them where it reads the chat's members. A new message clears `archived` for
-- the members who have not muted the chat (the worker's persist statement).
ALTER TABLE chat_participants
    ADD COLUMN muted_until timestamptz,
    ADD COLUMN archived    boolean NOT NULL DEFAULT false;

-- The chat list (GET /chats): a user's memberships, archived or not, by user.
CREATE INDEX chat_participants_list ON chat_participants (user_id, archived, chat_id);
DROP INDEX chat_participants_user;

-- The worker's un-archive on a new message touches only the archived rows of a chat.
CREATE INDEX chat_participants_archived ON chat_participants (chat_id) WHERE archived;
