//! Who a chat event goes to: in a group, once to its timeline (and per-user copies to
//! those who see it differently); elsewhere, each member's own stream. Membership
//! changes tell the gateways whom to follow the group for.

use uuid::Uuid;

use crate::domain::{
    events::{EVENT_CHAT_REMOVED, EVENT_CHAT_UPDATED, Membership, Outgoing},
    lifecycle::{ChatRemoved, ChatUpdated},
};

/// The members of the chat an applied command is announced to.
pub(super) struct Everyone<'a> {
    pub chat: Uuid,
    /// A group: chat-wide events go once to its timeline.
    pub group: bool,
    /// Every member (as the command left them).
    pub audience: &'a [Uuid],
}

impl Everyone<'_> {
    /// `name` at `version` to every member: once to a group's timeline, else to each
    /// member's stream.
    pub fn event<T: serde::Serialize>(
        &self,
        name: &'static str,
        version: i64,
        payload: &T,
    ) -> serde_json::Result<Outgoing> {
        if self.group {
            Outgoing::to_group(name, self.chat, version, payload, Vec::new())
        } else {
            Outgoing::chat_event(
                name,
                self.chat,
                version,
                payload,
                self.audience.iter().copied(),
            )
        }
    }
}

/// A membership change: `chat.updated` to every member (in a group: once to its
/// timeline, and to each joined member's own stream, which makes their gateway follow
/// the group), and `chat.removed` to each member who left (their gateway stops).
pub(super) fn membership_events(
    all: &Everyone<'_>,
    version: i64,
    updated: &ChatUpdated,
    (members, added): (&[Uuid], &[Uuid]),
    gone: &[Uuid],
) -> serde_json::Result<Vec<Outgoing>> {
    let chat = all.chat;
    let mut out = Vec::new();
    if all.group {
        let joined: Vec<Uuid> = added
            .iter()
            .copied()
            .filter(|u| members.contains(u))
            .collect();
        if joined.len() < members.len() {
            // The joined get their own copy; the removed get `chat.removed` instead.
            let except = joined.iter().chain(gone).copied().collect();
            out.push(Outgoing::to_group(
                EVENT_CHAT_UPDATED,
                chat,
                version,
                updated,
                except,
            )?);
        }
        if !joined.is_empty() {
            let mut e = Outgoing::chat_event(EVENT_CHAT_UPDATED, chat, version, updated, joined)?;
            e.membership = Some(Membership::Joined);
            out.push(e);
        }
    } else {
        out.push(Outgoing::chat_event(
            EVENT_CHAT_UPDATED,
            chat,
            version,
            updated,
            members.iter().copied(),
        )?);
    }
    if !gone.is_empty() {
        let p = ChatRemoved { chat_id: chat };
        let mut e =
            Outgoing::chat_event(EVENT_CHAT_REMOVED, chat, version, &p, gone.iter().copied())?;
        e.membership = Some(Membership::Left);
        out.push(e);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::chat::{Chat, ChatType};

    fn updated(chat: Uuid) -> ChatUpdated {
        ChatUpdated {
            chat: Chat {
                id: chat,
                kind: ChatType::Group,
                title: Some("g".into()),
                participants: Vec::new(),
                created_at: chrono::Utc::now(),
                last_sequence: 0,
            },
        }
    }

    fn users(n: usize) -> Vec<Uuid> {
        (0..n).map(|_| Uuid::new_v4()).collect()
    }

    #[test]
    fn a_join_to_a_group_goes_once_to_the_timeline_and_to_the_joined_own_streams() {
        let (chat, members, gone) = (Uuid::new_v4(), users(5), users(1));
        let all = Everyone {
            chat,
            group: true,
            audience: &members,
        };
        let out =
            membership_events(&all, 7, &updated(chat), (&members, &members[3..]), &gone).unwrap();
        assert_eq!(out.len(), 3);
        let timeline = out[0].group.as_ref().expect("a group target");
        assert_eq!(timeline.name, EVENT_CHAT_UPDATED);
        assert!(out[0].targets.is_empty(), "no member list is written");
        let mut except = members[3..].to_vec();
        except.extend(&gone);
        assert_eq!(timeline.except, except, "the joined and the removed");
        assert_eq!(out[1].membership, Some(Membership::Joined));
        assert_eq!(
            out[1].targets,
            vec![
                (members[3], EVENT_CHAT_UPDATED),
                (members[4], EVENT_CHAT_UPDATED)
            ]
        );
        assert_eq!(out[2].membership, Some(Membership::Left));
        assert_eq!(out[2].targets, vec![(gone[0], EVENT_CHAT_REMOVED)]);
        assert!(out.iter().all(|e| e.chat == Some(chat) && e.sequence == 7));
    }

    #[test]
    fn a_new_group_goes_to_each_member_joining_and_a_direct_chat_to_each_stream() {
        let (chat, members) = (Uuid::new_v4(), users(3));
        let group = Everyone {
            chat,
            group: true,
            audience: &members,
        };
        let out = membership_events(&group, 1, &updated(chat), (&members, &members), &[]).unwrap();
        assert_eq!(
            out.len(),
            1,
            "everyone joined: nobody to reach through the timeline"
        );
        assert_eq!(out[0].membership, Some(Membership::Joined));
        assert_eq!(out[0].targets.len(), 3);
        let direct = Everyone {
            group: false,
            ..group
        };
        let out = membership_events(&direct, 1, &updated(chat), (&members, &[]), &[]).unwrap();
        assert_eq!(out.len(), 1);
        assert!(out[0].group.is_none() && out[0].membership.is_none());
        assert_eq!(out[0].targets.len(), 3);
        let e = direct.event(EVENT_CHAT_UPDATED, 2, &updated(chat)).unwrap();
        assert_eq!(e.targets.len(), 3);
        let e = group.event(EVENT_CHAT_UPDATED, 2, &updated(chat)).unwrap();
        assert!(e.targets.is_empty() && e.group.as_ref().is_some_and(|g| g.except.is_empty()));
    }
}
