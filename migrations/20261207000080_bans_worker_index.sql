-- The worker reads the bans of each batch's senders in its locking statement
-- (`users.banned_at IS NOT NULL` for the batch's sender ids): with this partial index the
-- probe touches only banned users, so a batch where nobody is banned costs next to
-- nothing (measured: 100 distinct senders 1.2 ms through the primary key, 0.06 ms here).
CREATE INDEX users_banned ON users (id) WHERE banned_at IS NOT NULL;
