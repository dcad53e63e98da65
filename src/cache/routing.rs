//! Where each user's sockets live: which gateway instance holds them.
//!
//! Gateways heartbeat into a ZSET; a gateway whose lease ran out is reaped by any
//! other gateway, which removes its sockets from the routing state.

use std::collections::HashMap;

use uuid::Uuid;

use super::Cache;
use super::membership::LookupError;
use crate::domain::notification::{GatewayNotification, StatusDelivery, StatusEvent};

impl Cache {
    pub async fn register_socket(
        &self,
        gateway: &str,
        user: Uuid,
        socket: &str,
    ) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .hset(self.keys.user_sockets(user), socket, gateway)
            .ignore()
            .sadd(
                self.keys.gateway_sockets(gateway),
                format!("{user}|{socket}"),
            )
            .ignore()
            .query_async(&mut conn)
            .await
    }

    pub async fn unregister_socket(
        &self,
        gateway: &str,
        user: Uuid,
        socket: &str,
    ) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .hdel(self.keys.user_sockets(user), socket)
            .ignore()
            .srem(
                self.keys.gateway_sockets(gateway),
                format!("{user}|{socket}"),
            )
            .ignore()
            .query_async(&mut conn)
            .await
    }

    /// The gateways holding at least one socket of each user (users with none are absent).
    pub async fn gateways_of(
        &self,
        users: &[Uuid],
    ) -> redis::RedisResult<HashMap<Uuid, Vec<String>>> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        for u in users {
            pipe.hvals(self.keys.user_sockets(*u));
        }
        let vals: Vec<Vec<String>> = pipe.query_async(&mut conn).await?;
        Ok(users
            .iter()
            .zip(vals)
            .filter(|(_, g)| !g.is_empty())
            .map(|(u, mut g)| {
                g.sort();
                g.dedup();
                (*u, g)
            })
            .collect())
    }

    /// Publishes one notification per gateway, pipelined.
    pub async fn notify_gateways(
        &self,
        batch: &[(String, GatewayNotification)],
    ) -> redis::RedisResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        for (gateway, note) in batch {
            let payload = serde_json::to_vec(note).map_err(std::io::Error::other)?;
            pipe.publish(self.keys.gateway_channel(gateway), payload)
                .ignore();
        }
        pipe.query_async::<()>(&mut conn).await?;
        Ok(())
    }

    /// Renews a gateway's lease; `true` if the gateway was not registered (new or reaped).
    pub async fn heartbeat(&self, gateway: &str) -> redis::RedisResult<bool> {
        let mut conn = self.conn.clone();
        let now = chrono::Utc::now().timestamp_millis();
        let added: i64 = redis::cmd("ZADD")
            .arg(self.keys.gateways())
            .arg(now)
            .arg(gateway)
            .query_async(&mut conn)
            .await?;
        Ok(added == 1)
    }

    /// Removes gateways whose lease is older than `lease_ms`, with their sockets.
    /// Returns the number of gateways reaped.
    pub async fn reap_gateways(&self, lease_ms: i64) -> redis::RedisResult<usize> {
        let mut conn = self.conn.clone();
        let cutoff = chrono::Utc::now().timestamp_millis() - lease_ms;
        let dead: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.keys.gateways())
            .arg("-inf")
            .arg(cutoff)
            .query_async(&mut conn)
            .await?;
        for gateway in &dead {
            tracing::warn!(%gateway, "gateway lease expired: removing its sockets");
            self.forget_gateway(gateway).await?;
        }
        Ok(dead.len())
    }

    /// Removes a gateway and all the sockets it registered.
    pub async fn forget_gateway(&self, gateway: &str) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let entries: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.gateway_sockets(gateway))
            .query_async(&mut conn)
            .await?;
        let mut pipe = redis::pipe();
        for entry in &entries {
            if let Some((user, socket)) = entry.split_once('|')
                && let Ok(user) = Uuid::parse_str(user)
            {
                pipe.hdel(self.keys.user_sockets(user), socket).ignore();
            }
        }
        pipe.del(self.keys.gateway_sockets(gateway)).ignore();
        pipe.zrem(self.keys.gateways(), gateway).ignore();
        pipe.query_async(&mut conn).await
    }
}

impl Cache {
    /// Sends a status change to every other participant's gateways.
    pub async fn announce_status(
        &self,
        pool: &sqlx::PgPool,
        event: StatusEvent,
    ) -> Result<(), LookupError> {
        let members = self.members(pool, &[event.chat_id]).await?;
        let others: Vec<Uuid> = members
            .get(&event.chat_id)
            .into_iter()
            .flatten()
            .copied()
            .filter(|u| *u != event.user_id)
            .collect();
        let mut per_gateway: HashMap<String, Vec<Uuid>> = HashMap::new();
        for (user, gateways) in self.gateways_of(&others).await? {
            for g in gateways {
                per_gateway.entry(g).or_default().push(user);
            }
        }
        let notes: Vec<(String, GatewayNotification)> = per_gateway
            .into_iter()
            .map(|(g, users)| {
                let statuses = vec![StatusDelivery {
                    event: event.clone(),
                    users,
                }];
                (
                    g,
                    GatewayNotification {
                        statuses,
                        ..Default::default()
                    },
                )
            })
            .collect();
        Ok(self.notify_gateways(&notes).await?)
    }
}
