-- Attachments: an upload is announced (POST /uploads) before its bytes go straight to
-- S3 through a presigned PUT; a send names its uploads, checked then (owner, object
-- present with the declared size) and linked to the message in the send's transaction.
CREATE TABLE uploads (
    id           uuid PRIMARY KEY,
    owner_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    file_name    text NOT NULL CHECK (length(file_name) BETWEEN 1 AND 255),
    content_type text NOT NULL CHECK (length(content_type) BETWEEN 3 AND 255),
    size         bigint NOT NULL CHECK (size > 0),
    -- Where the bytes are in S3_BUCKET: uploads/<id> (storage::object_key).
    object_key   text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- When a send first found the object in storage with the declared size.
    confirmed_at timestamptz
);
CREATE INDEX uploads_by_owner ON uploads (owner_id, created_at);

-- A message's attachments, in the order the send listed them.
CREATE TABLE message_attachments (
    message_id uuid NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    position   smallint NOT NULL CHECK (position >= 0),
    upload_id  uuid NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
    PRIMARY KEY (message_id, position)
);
CREATE INDEX message_attachments_upload ON message_attachments (upload_id);
