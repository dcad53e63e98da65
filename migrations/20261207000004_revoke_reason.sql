-- Why a session was revoked (`logout`, `password_changed`, `banned`, ...): its tokens
-- are then refused with 401 `session_revoked`, or 403 `banned` for a ban.
ALTER TABLE sessions ADD COLUMN revoke_reason text;
