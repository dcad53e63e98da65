-- Moderation: a global role, reports, moderator deletes and the audit log of admin
-- actions (which is also the outbox of their `admin.*` integration events).

-- 'admin' is granted and revoked with `courier admin grant|revoke <username>`.
ALTER TABLE users
    ADD COLUMN role text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin'));

-- Set on a tombstone an admin made with `DELETE /admin/messages/:id`; NULL for a
-- delete by the sender or a group's owner or admin.
ALTER TABLE messages
    ADD COLUMN deleted_by text CHECK (deleted_by IN ('moderator'));

-- A report of a message or a user. The ids are not foreign keys: a report outlives
-- the account or chat it names. `user_id` is the reported user (a message's sender
-- for a message report); `message_content` is the message as it was when reported.
CREATE TABLE reports (
    id              uuid PRIMARY KEY,
    reporter_id     uuid NOT NULL,
    message_id      uuid,
    chat_id         uuid,
    message_content text,
    user_id         uuid NOT NULL,
    reason          text NOT NULL,
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    resolved_by     uuid,
    resolution_note text,
    CHECK ((status = 'resolved') = (resolved_at IS NOT NULL))
);
CREATE INDEX reports_by_status ON reports (status, created_at DESC, id);
CREATE INDEX reports_all ON reports (created_at DESC, id);

-- Every admin action. `actor_id` NULL: an operator at the command line. Rows are
-- published to the integration exchange (`admin.<action>`) right after their commit;
-- `published_at` NULL marks what the API's relay still has to publish.
CREATE TABLE audit_log (
    id           uuid PRIMARY KEY,
    actor_id     uuid,
    action       text NOT NULL,
    target_type  text NOT NULL,
    target_id    uuid NOT NULL,
    details      jsonb NOT NULL DEFAULT '{}',
    at           timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_unpublished ON audit_log (at) WHERE published_at IS NULL;
