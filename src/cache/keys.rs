//! Key and channel names under the deployment's prefix. In Redis Cluster mode the
//! keys that one script or transaction touches share a hash tag, so they live in one
//! slot: a user's (`{u:<id>}`: stream, clock, connections, blocks, groups left), a
//! chat's (`{c:<id>}`), a gateway's (`{g:<id>}`), and presence's (`{presence}`).

use uuid::Uuid;

/// Key and channel names under the deployment's prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
    notify: String,
    /// Redis Cluster mode: keys carry hash tags, and each user has a clock.
    pub cluster: bool,
}

impl Keys {
    pub fn new(prefix: &str, notification_channel: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
            notify: notification_channel.to_string(),
            cluster: false,
        }
    }

    /// `{p}<kind>:<id>`; in cluster mode the id is wrapped in the hash tag
    /// `{<tag>:<id>}`, so every key of one owner lands in one slot.
    fn owned(&self, kind: &str, tag: &str, id: impl std::fmt::Display) -> String {
        if self.cluster {
            format!("{}{kind}:{{{tag}:{id}}}", self.prefix)
        } else {
            format!("{}{kind}:{id}", self.prefix)
        }
    }
    fn user(&self, user: Uuid) -> String {
        self.owned("user", "u", user)
    }
    fn chat(&self, chat: Uuid) -> String {
        self.owned("chat", "c", chat)
    }
    fn gateway(&self, gateway: &str) -> String {
        self.owned("gateway", "g", gateway)
    }
    /// `{p}presence:<what>` (`{p}presence:{presence}:<what>` in cluster mode).
    fn presence(&self, what: &str) -> String {
        if self.cluster {
            format!("{}presence:{{presence}}:{what}", self.prefix)
        } else {
            format!("{}presence:{what}", self.prefix)
        }
    }
    /// How the publish script names a user's keys: `prefix .. open .. id .. close`.
    pub fn user_pattern(&self) -> (String, &'static str) {
        if self.cluster {
            (format!("{}user:{{u:", self.prefix), "}")
        } else {
            (format!("{}user:", self.prefix), "")
        }
    }
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    /// SET of user ids of a chat (cache of `chat_participants`).
    pub fn members(&self, chat: Uuid) -> String {
        format!("{}:members", self.chat(chat))
    }
    /// STRING counter bumped whenever a chat's membership changes: a cache fill that
    /// started before the change does not store what it read.
    pub fn members_gen(&self, chat: Uuid) -> String {
        format!("{}:members:gen", self.chat(chat))
    }
    /// SET of the users `user` blocked, plus the `-` marker (cache of `user_blocks`).
    pub fn user_blocking(&self, user: Uuid) -> String {
        format!("{}:blocking", self.user(user))
    }
    /// SET of the users who blocked `user`, plus the `-` marker.
    pub fn user_blockers(&self, user: Uuid) -> String {
        format!("{}:blockers", self.user(user))
    }
    /// STRING counter bumped whenever a block involving `user` changes.
    pub fn user_blocks_gen(&self, user: Uuid) -> String {
        format!("{}:blocks:gen", self.user(user))
    }
    /// Pub/sub channel of revocations and block changes for every process's near cache.
    pub fn near_channel(&self) -> String {
        format!("{}near", self.prefix)
    }
    /// HASH connection id → gateway id of a user's live sockets and SSE streams.
    pub fn user_sockets(&self, user: Uuid) -> String {
        format!("{}:sockets", self.user(user))
    }
    /// STREAM of a user's recoverable events (its ids are the events' offsets).
    pub fn user_events(&self, user: Uuid) -> String {
        format!("{}:events", self.user(user))
    }
    /// HASH {ms, n, since, node, epoch}: the clock `user`'s recoverable events' ids
    /// come from: the global one, or in cluster mode the user's own (beside their
    /// stream, so one script writes both).
    pub fn clock(&self, user: Uuid) -> String {
        if self.cluster {
            format!("{}:clock", self.user(user))
        } else {
            format!("{}clock", self.prefix)
        }
    }
    /// STREAM of a group chat's events (one entry per event, the same ids as users').
    pub fn chat_events(&self, chat: Uuid) -> String {
        format!("{}:events", self.chat(chat))
    }
    /// SET of the gateways following a group chat's timeline.
    pub fn chat_gateways(&self, chat: Uuid) -> String {
        format!("{}:gws", self.chat(chat))
    }
    /// SET of the chats a gateway follows (the reverse of `chat_gateways`, for cleanup).
    pub fn gateway_chats(&self, gateway: &str) -> String {
        format!("{}:chats", self.gateway(gateway))
    }
    /// HASH chat id → id of the `chat.removed` of the groups `user` left lately.
    pub fn user_left(&self, user: Uuid) -> String {
        format!("{}:left", self.user(user))
    }
    /// SET of users who are online (grace period included).
    pub fn presence_online(&self) -> String {
        self.presence("online")
    }
    /// ZSET user → when they go offline unless they connect again (ms since epoch).
    pub fn presence_pending(&self) -> String {
        self.presence("pending")
    }
    /// SET of "userId|socketId" registered by one gateway (for crash cleanup).
    pub fn gateway_sockets(&self, gateway: &str) -> String {
        format!("{}:sockets", self.gateway(gateway))
    }
    /// ZSET gateway id → last heartbeat (ms since epoch).
    pub fn gateways(&self) -> String {
        format!("{}gateways", self.prefix)
    }
    /// Pub/sub channel of one gateway instance.
    pub fn gateway_channel(&self, gateway: &str) -> String {
        format!("{}{}.{gateway}", self.prefix, self.notify)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::cluster::key_slot;

    #[test]
    fn cluster_keys_of_one_owner_share_a_slot() {
        let mut k = Keys::new("p:", "n");
        let (u, c) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(k.user_events(u), format!("p:user:{u}:events"));
        assert_eq!(k.clock(u), "p:clock");
        k.cluster = true;
        let slot = |s: String| key_slot(s.as_bytes());
        let user = [
            k.user_events(u),
            k.clock(u),
            k.user_sockets(u),
            k.user_left(u),
            k.user_blocking(u),
            k.user_blockers(u),
            k.user_blocks_gen(u),
        ];
        assert!(
            user.iter()
                .all(|key| slot(key.clone()) == slot(k.user_events(u)))
        );
        assert_eq!(k.user_events(u), format!("p:user:{{u:{u}}}:events"));
        assert_eq!(k.members(c), format!("p:chat:{{c:{c}}}:members"));
        assert_eq!(k.gateway_sockets("g1"), "p:gateway:{g:g1}:sockets");
        let (open, close) = k.user_pattern();
        assert_eq!(format!("{open}{u}{close}:events"), k.user_events(u));
        assert_eq!(slot(k.members(c)), slot(k.members_gen(c)));
        assert_eq!(slot(k.chat_events(c)), slot(k.chat_gateways(c)));
        assert_eq!(slot(k.presence_online()), slot(k.presence_pending()));
        assert_eq!(slot(k.gateway_sockets("g1")), slot(k.gateway_chats("g1")));
    }
}
