-- Per-chat order under retries: a message retried for a reason of its own holds its
-- chat, and the chat's later commands are parked behind it in the same retry queue
-- until it is persisted or dead-lettered. Kept here so that the worker taking over a
-- partition (a handover, a restart) knows the holds of its chats.
CREATE TABLE chat_holds (
    chat_id   uuid PRIMARY KEY,
    partition int NOT NULL,
    head      uuid NOT NULL,
    delay_ms  bigint NOT NULL,
    since     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_holds_by_partition ON chat_holds (partition);
