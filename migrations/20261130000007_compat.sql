-- The chat-be compatibility profile (API_COMPAT=chat-be, docs/migrating-from-nestjs.md):
-- users sign in with an e-mail there. Courier's own API keeps using usernames; a user
-- registered through the profile gets a username derived from the e-mail.
ALTER TABLE users
    -- Stored trimmed and lower-cased; one account per e-mail; NULL for users who
    -- registered through Courier's own API.
    ADD COLUMN email       text UNIQUE,
    -- The reference backend's role ('VISITOR' | 'AGENT'); NULL reads as 'VISITOR'.
    ADD COLUMN legacy_role text,
    -- The reference backend's updatedAt of imported users; NULL reads as created_at.
    ADD COLUMN updated_at  timestamptz;
