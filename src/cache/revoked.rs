//! The denylist of revoked sessions: `revoked:<sid>` keys that live as long as an
//! access token of the session could (`JWT_EXPIRATION` plus margin), and a
//! `revoked:seeded` marker meaning "every revocation of that window is here".
//!
//! PostgreSQL is behind it: a check that finds neither the key nor the marker (Redis
//! restarted or was flushed) is answered from PostgreSQL, which then re-seeds the
//! denylist and sets the marker again.

use std::time::Duration;

use redis::AsyncCommands;
use uuid::Uuid;

use super::Cache;

/// What the denylist knows of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listed {
    Revoked,
    NotRevoked,
    /// The denylist is not seeded: ask PostgreSQL.
    Unknown,
}

impl Cache {
    fn revoked_key(&self, sid: Uuid) -> String {
        format!("{}revoked:{sid}", self.keys.prefix())
    }

    fn seeded_key(&self) -> String {
        format!("{}revoked:seeded", self.keys.prefix())
    }

    /// Looks `sid` up: one round trip.
    pub async fn revoked(&self, sid: Uuid) -> redis::RedisResult<Listed> {
        let mut conn = self.conn.clone();
        let (seeded, key): (Option<String>, Option<String>) = conn
            .mget(&[self.seeded_key(), self.revoked_key(sid)])
            .await?;
        Ok(match (seeded, key) {
            (_, Some(_)) => Listed::Revoked,
            (Some(_), None) => Listed::NotRevoked,
            (None, None) => Listed::Unknown,
        })
    }

    /// Lists sessions as revoked for `ttl` each.
    pub async fn deny(&self, sids: &[(Uuid, Duration)]) -> redis::RedisResult<()> {
        if sids.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (sid, ttl) in sids {
            pipe.set_ex(self.revoked_key(*sid), 1, ttl.as_secs().max(1))
                .ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await
    }

    /// Re-seeds the denylist with every revocation still in the window, then marks it
    /// seeded.
    pub async fn seed_revoked(&self, sids: &[(Uuid, Duration)]) -> redis::RedisResult<()> {
        self.deny(sids).await?;
        let mut conn = self.conn.clone();
        conn.set::<_, _, ()>(self.seeded_key(), 1).await
    }
}
