-- Account deletion (DELETE /users/me): the user row stays, anonymized ("Deleted user",
-- an unusable password hash, no e-mail), so the messages it sent keep their sender.
-- `deleted_at` also starts the username hold (ACCOUNT_USERNAME_HOLD): once it is over,
-- registering the name renames this row to `deleted-<24 hex of its id>`.
ALTER TABLE users ADD COLUMN deleted_at timestamptz;
