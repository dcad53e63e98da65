//! This gateway's index of group chats: which local users are in which groups (group
//! deliveries go to them), the groups they left within the retention window (read up
//! to their `chat.removed`), and which chats this process follows in Redis.
//!
//! A user is indexed while they hold a local connection. Their groups are loaded at
//! the opening of their first connection, after it was registered in Redis; from then
//! on, membership changes come as pushes (`Membership` on per-user events), which win
//! over what the load read.

use std::{
    collections::{HashMap, HashSet},
    sync::{Mutex, MutexGuard},
};

use uuid::Uuid;

use crate::domain::events::Offset;

#[derive(Default)]
struct UserGroups {
    current: HashSet<Uuid>,
    /// Groups left, with the id of their `chat.removed`.
    left: HashMap<Uuid, Offset>,
    /// Groups whose membership a push changed (a load does not override them).
    touched: HashSet<Uuid>,
    loaded: bool,
}

#[derive(Default)]
struct Index {
    by_chat: HashMap<Uuid, HashSet<Uuid>>,
    by_user: HashMap<Uuid, UserGroups>,
    followed: HashSet<Uuid>,
}

impl Index {
    fn enter(&mut self, user: Uuid, chat: Uuid) {
        if let Some(g) = self.by_user.get_mut(&user) {
            g.left.remove(&chat);
            if g.current.insert(chat) {
                self.by_chat.entry(chat).or_default().insert(user);
            }
        }
    }

    fn leave(&mut self, user: Uuid, chat: Uuid, at: Offset) {
        let Some(g) = self.by_user.get_mut(&user) else {
            return;
        };
        g.current.remove(&chat);
        let upto = g.left.entry(chat).or_insert(at);
        *upto = (*upto).max(at);
        if let Some(users) = self.by_chat.get_mut(&chat) {
            users.remove(&user);
            if users.is_empty() {
                self.by_chat.remove(&chat);
            }
        }
    }
}

/// The index, shared by every clone of the hub.
#[derive(Default)]
pub struct Groups(Mutex<Index>);

impl Groups {
    fn index(&self) -> MutexGuard<'_, Index> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Indexes `user` (a connection of theirs is opening), with no group yet.
    pub fn add_user(&self, user: Uuid) {
        self.index().by_user.entry(user).or_default();
    }

    /// Forgets `user` (their last local connection closed).
    pub fn remove_user(&self, user: Uuid) {
        let mut ix = self.index();
        let Some(g) = ix.by_user.remove(&user) else {
            return;
        };
        for chat in g.current {
            if let Some(users) = ix.by_chat.get_mut(&chat) {
                users.remove(&user);
                if users.is_empty() {
                    ix.by_chat.remove(&chat);
                }
            }
        }
    }

    /// Whether `user`'s groups were loaded already (by another of their connections).
    pub fn is_loaded(&self, user: Uuid) -> bool {
        self.index().by_user.get(&user).is_some_and(|g| g.loaded)
    }

    /// Records `user`'s groups as loaded: `current` (PostgreSQL) and `left` (Redis),
    /// except the groups a push changed meanwhile.
    pub fn load(&self, user: Uuid, current: &[Uuid], left: &[(Uuid, Offset)]) {
        let mut ix = self.index();
        let Some(g) = ix.by_user.get_mut(&user) else {
            return;
        };
        g.loaded = true;
        let touched = g.touched.clone();
        for (chat, at) in left.iter().filter(|(c, _)| !touched.contains(c)) {
            if !current.contains(chat) {
                ix.leave(user, *chat, *at);
            }
        }
        for chat in current.iter().filter(|c| !touched.contains(c)) {
            ix.enter(user, *chat);
        }
    }

    /// `user`'s groups to read: the current ones (`None`), and the ones left after
    /// `cutoff` (up to their `chat.removed`).
    pub fn of(&self, user: Uuid, cutoff_ms: u64) -> Vec<(Uuid, Option<Offset>)> {
        let mut ix = self.index();
        let Some(g) = ix.by_user.get_mut(&user) else {
            return Vec::new();
        };
        g.left.retain(|_, at| at.ms >= cutoff_ms);
        let mut out: Vec<(Uuid, Option<Offset>)> = g.current.iter().map(|c| (*c, None)).collect();
        out.extend(g.left.iter().map(|(c, at)| (*c, Some(*at))));
        out.sort();
        out
    }

    /// The local users in group `chat`.
    pub fn users_in(&self, chat: Uuid) -> Vec<Uuid> {
        self.index()
            .by_chat
            .get(&chat)
            .map(|u| u.iter().copied().collect())
            .unwrap_or_default()
    }

    /// A pushed `Membership::Joined` of `user` to `chat`: `true` if the chat is new to
    /// them here (the caller follows it and catches their connections up).
    pub fn joined(&self, user: Uuid, chat: Uuid) -> bool {
        let mut ix = self.index();
        let Some(g) = ix.by_user.get_mut(&user) else {
            return false;
        };
        g.touched.insert(chat);
        if g.current.contains(&chat) {
            return false;
        }
        ix.enter(user, chat);
        true
    }

    /// A `Membership::Joined` read back at `at`: `chat` becomes current unless a later
    /// leave is known.
    pub fn joined_at(&self, user: Uuid, chat: Uuid, at: Offset) {
        let mut ix = self.index();
        let later_leave = ix
            .by_user
            .get(&user)
            .and_then(|g| g.left.get(&chat))
            .is_some_and(|upto| *upto > at);
        if !later_leave {
            ix.enter(user, chat);
        }
    }

    /// A pushed `Membership::Left` of `user` from `chat` at `at`.
    pub fn left(&self, user: Uuid, chat: Uuid, at: Offset) {
        let mut ix = self.index();
        if let Some(g) = ix.by_user.get_mut(&user) {
            g.touched.insert(chat);
        }
        ix.leave(user, chat, at);
    }

    /// Of `chats`, those this process does not follow yet.
    pub fn unfollowed(&self, chats: &[Uuid]) -> Vec<Uuid> {
        let ix = self.index();
        chats
            .iter()
            .filter(|c| !ix.followed.contains(c))
            .copied()
            .collect()
    }

    /// Records that this process follows `chats` (Redis confirmed it).
    pub fn followed(&self, chats: &[Uuid]) {
        self.index().followed.extend(chats.iter().copied());
    }

    /// Forgets what this process followed (Redis may have lost it) and returns every
    /// indexed chat, to follow again.
    pub fn refollow(&self) -> Vec<Uuid> {
        let mut ix = self.index();
        ix.followed.clear();
        ix.by_chat.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(ms: u64) -> Offset {
        Offset::new(ms, 1)
    }

    #[test]
    fn pushes_win_over_a_load_and_left_groups_are_read_up_to_their_removal() {
        let g = Groups::default();
        let (u, a, b, c) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        g.add_user(u);
        g.left(u, a, o(50));
        assert!(g.joined(u, c));
        assert!(!g.joined(u, c), "already current");
        g.load(u, &[a, b], &[(c, o(10))]);
        assert!(g.is_loaded(u));
        let mut want = vec![(a, Some(o(50))), (b, None), (c, None)];
        want.sort();
        assert_eq!(g.of(u, 0), want);
        assert_eq!(g.users_in(b), vec![u]);
        assert!(g.users_in(a).is_empty());
        g.joined_at(u, a, o(40));
        assert!(g.users_in(a).is_empty(), "a later leave is known");
        g.left(u, b, o(55));
        assert_eq!(
            g.of(u, 52),
            vec![(b, Some(o(55))), (c, None)]
                .into_iter()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>(),
            "a's leave is past the window"
        );
        g.joined_at(u, a, o(70));
        assert_eq!(g.users_in(a), vec![u]);
        assert!(g.users_in(b).is_empty());
        g.remove_user(u);
        assert!(g.users_in(a).is_empty() && g.of(u, 0).is_empty());
        assert!(!g.joined(u, b), "not indexed");
    }

    #[test]
    fn following_is_remembered_until_a_refollow() {
        let g = Groups::default();
        let (u, a) = (Uuid::new_v4(), Uuid::new_v4());
        g.add_user(u);
        g.load(u, &[a], &[]);
        assert_eq!(g.unfollowed(&[a]), vec![a]);
        g.followed(&[a]);
        assert!(g.unfollowed(&[a]).is_empty());
        assert_eq!(g.refollow(), vec![a]);
        assert_eq!(g.unfollowed(&[a]), vec![a]);
    }
}
