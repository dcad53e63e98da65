-- Profiles and user search: a user's bio and avatar (an upload of theirs: image types
-- only, at most 5 MB, checked by the use case), and trigram indexes for
-- GET /users/search (prefix and typo-tolerant matches on username and display name).
CREATE EXTENSION IF NOT EXISTS pg_trgm;

ALTER TABLE users
    ADD COLUMN bio text CHECK (char_length(bio) BETWEEN 1 AND 500),
    -- The upload's bytes are at uploads.object_key; a deleted upload clears the avatar.
    ADD COLUMN avatar_upload_id uuid REFERENCES uploads (id) ON DELETE SET NULL;

CREATE INDEX users_avatar_upload ON users (avatar_upload_id) WHERE avatar_upload_id IS NOT NULL;
CREATE INDEX users_username_trgm ON users USING gin (lower(username) gin_trgm_ops);
CREATE INDEX users_display_name_trgm ON users USING gin (lower(display_name) gin_trgm_ops);
