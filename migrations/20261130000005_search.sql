-- Full-text search over message content (GET /search/messages).
--
-- `search` is a STORED generated column: PostgreSQL computes it in the very statement
-- that inserts a message or edits its content (and empties it with a delete's
-- tombstone), so the index is never behind the messages and needs no trigger or job.
-- Configuration 'simple': lower-cased words, no stemming and no stop words, the same
-- for every language a chat is written in (see the README's Search section).
-- `<` and `>` are read as spaces: the parser would otherwise take `<word>` for an
-- HTML tag and skip it (and all of a `<script>`), but chat content is plain text.
-- Adding the column rewrites `messages` once, under an exclusive lock.
ALTER TABLE messages ADD COLUMN search tsvector
    GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, translate(content, '<>', '  '))) STORED;

-- One GIN index over (chat_id, search), chat_id through btree_gin (a trusted contrib
-- extension): a search looks up the caller's chats one by one, and each lookup
-- intersects the chat's entry with the query's lexemes inside the index, so only
-- matches in the caller's chats reach the heap, however common the word is elsewhere.
-- Tombstones are left out (their tsvector is empty anyway).
CREATE EXTENSION IF NOT EXISTS btree_gin;
CREATE INDEX messages_search ON messages USING gin (chat_id, search) WHERE deleted_at IS NULL;
