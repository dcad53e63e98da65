-- Realtime sessions: delivered marks beside the read marks, and when a user was last seen.
ALTER TABLE chat_participants ADD COLUMN delivered_sequence bigint NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN last_seen_at timestamptz;
