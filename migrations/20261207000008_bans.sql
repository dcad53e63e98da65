-- Bans: a banned user cannot log in or use a token (403 `banned`) until `banned_until`
-- (forever when NULL), and the worker dead-letters their sends still queued.
ALTER TABLE users
    ADD COLUMN banned_at    timestamptz,
    ADD COLUMN banned_until timestamptz,
    ADD COLUMN ban_reason   text;
