-- Imports the NestJS reference backend's (ivalrivall/chat-be) users, chats,
-- participants and messages into Courier's tables. See docs/migrating-from-nestjs.md.
--
-- Expects the reference tables in the schema `chat_be` of Courier's database
-- (chat_be.users, chat_be.chats, chat_be.chat_participants, chat_be.chat_messages),
-- e.g. restored there from a pg_dump, or mapped with postgres_fdw's
-- IMPORT FOREIGN SCHEMA. Run after Courier's migrations, while nothing writes:
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f scripts/import-chat-be.sql
-- One transaction; rows already imported (same ids) are skipped, so it can run again.
-- The reference backend's TIMESTAMP columns are read as UTC.

BEGIN;

-- Users: e-mail (trimmed, lower-cased) and role kept; the bcrypt hash is kept as is
-- and upgraded to Argon2id at the user's first sign-in. The username Courier needs is
-- the e-mail's local part (as the profile derives it), with a suffix from the id
-- when another user has it already.
WITH src AS (
    SELECT u.id, lower(trim(u.email)) AS email, u.password, u.role::text AS role,
           u.created_at AT TIME ZONE 'UTC' AS created_at,
           u.updated_at AT TIME ZONE 'UTC' AS updated_at,
           rpad(left(regexp_replace(lower(split_part(trim(u.email), '@', 1)),
                                    '[^a-z0-9_.-]', '_', 'g'), 20), 3, '_') AS base
    FROM chat_be.users u
    WHERE NOT EXISTS (SELECT 1 FROM users x WHERE x.id = u.id)
), named AS (
    SELECT src.*,
           row_number() OVER (PARTITION BY base ORDER BY created_at, id) AS nth
    FROM src
)
INSERT INTO users (id, username, email, password_hash, legacy_role, created_at, updated_at)
SELECT id,
       CASE WHEN nth = 1 AND NOT EXISTS (SELECT 1 FROM users x WHERE x.username = base)
            THEN base ELSE base || '-' || left(replace(id::text, '-', ''), 10) END,
       email, password, role, created_at, updated_at
FROM named;

-- Chats with their participants and messages counted. A non-group chat of exactly
-- two users becomes a direct chat (one per pair: a second one of the same pair stays a
-- group); any other chat a group titled by its name (else "Chat"). The creator
-- (Courier needs one; the reference does not record it) is the first participant.
CREATE TEMP TABLE import_chats ON COMMIT DROP AS
SELECT c.id, c.is_group, c.name,
       c.created_at AT TIME ZONE 'UTC' AS created_at,
       (SELECT array_agg(p.user_id ORDER BY p.created_at, p.user_id)
        FROM chat_be.chat_participants p WHERE p.chat_id = c.id) AS members,
       (SELECT count(*) FROM chat_be.chat_messages m WHERE m.chat_id = c.id) AS messages,
       (SELECT max(m.sent_at) AT TIME ZONE 'UTC'
        FROM chat_be.chat_messages m WHERE m.chat_id = c.id) AS last_message_at
FROM chat_be.chats c
WHERE NOT EXISTS (SELECT 1 FROM chats x WHERE x.id = c.id)
  AND EXISTS (SELECT 1 FROM chat_be.chat_participants p WHERE p.chat_id = c.id);

ALTER TABLE import_chats ADD COLUMN direct_key text;
UPDATE import_chats SET direct_key = CASE
        WHEN members[1] < members[2] THEN members[1] || ':' || members[2]
        ELSE members[2] || ':' || members[1] END
WHERE NOT is_group AND cardinality(members) = 2;
-- One direct chat per pair, as Courier keeps it.
UPDATE import_chats i SET direct_key = NULL
WHERE direct_key IS NOT NULL AND (
    EXISTS (SELECT 1 FROM chats x WHERE x.direct_key = i.direct_key)
    OR EXISTS (SELECT 1 FROM import_chats o WHERE o.direct_key = i.direct_key
               AND (o.created_at, o.id) < (i.created_at, i.id)));

INSERT INTO chats (id, type, title, direct_key, last_sequence, last_message_at, created_by, created_at)
SELECT id,
       CASE WHEN direct_key IS NULL THEN 'group' ELSE 'direct' END,
       CASE WHEN direct_key IS NULL THEN COALESCE(NULLIF(trim(name), ''), 'Chat') END,
       direct_key, messages, last_message_at, members[1], created_at
FROM import_chats;

-- Participants: a group's creator is its owner, everyone else a member. Everything
-- imported counts as delivered and read (the reference backend kept no receipts).
INSERT INTO chat_participants (chat_id, user_id, role, joined_at, last_read_sequence, delivered_sequence)
SELECT p.chat_id, p.user_id,
       CASE WHEN i.direct_key IS NULL AND p.user_id = i.members[1] THEN 'owner' ELSE 'member' END,
       p.created_at AT TIME ZONE 'UTC', i.messages, i.messages
FROM chat_be.chat_participants p JOIN import_chats i ON i.id = p.chat_id;

-- Messages: sequences renumbered 1, 2, 3, ... per chat in the reference order
-- (sequence, then time), as Courier's are gapless. A client message id that is not a
-- UUID, or repeats within the chat and sender, is replaced by the message's id; the
-- broker message id likewise. Attachments are not imported (content stays).
INSERT INTO messages (id, chat_id, sender_id, client_message_id, broker_message_id, content,
                      message_type, sequence, sent_at)
SELECT id, chat_id, sender_id,
       CASE WHEN cid_ok AND row_number() OVER (PARTITION BY chat_id, sender_id, cid ORDER BY seq, sent_at, id) = 1
            THEN cid ELSE id END,
       CASE WHEN broker_message_id ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$'
            THEN broker_message_id::uuid ELSE id END,
       COALESCE(content, ''), 'text',
       row_number() OVER (PARTITION BY chat_id ORDER BY seq, sent_at, id),
       sent_at
FROM (
    SELECT m.id, m.chat_id, m.sender_id, m.content, m.broker_message_id,
           m.sequence AS seq, m.sent_at AT TIME ZONE 'UTC' AS sent_at,
           m.client_message_id ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$' AS cid_ok,
           CASE WHEN m.client_message_id ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$'
                THEN m.client_message_id::uuid END AS cid
    FROM chat_be.chat_messages m JOIN import_chats i ON i.id = m.chat_id
) m;

COMMIT;
