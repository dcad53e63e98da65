//! Assigning per-chat sequences to a batch of send commands: the rules, without I/O.
//!
//! Given what the database holds (each chat's last sequence, the senders that are
//! participants, the messages already stored under the batch's idempotency keys),
//! every command becomes a new message with the next sequence of its chat, the
//! stored message it duplicates, or a rejection. Sequences never skip or repeat.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    chat::ChatSettings,
    mention,
    message::{Message, Rejection, SendCommand},
};

/// `(chat, sender, clientMessageId)`: the idempotency key of a message.
pub type IdemKey = (Uuid, Uuid, Uuid);

/// What became of one command of a batch.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // the common variant; boxing it costs an allocation per message
pub enum Outcome {
    /// Persisted now or earlier. `notify` is false for a client retry (same key,
    /// another broker message) of a stored message; true when fresh, or when the
    /// broker redelivers the very message that stored it (the earlier attempt may
    /// have died before notifying). `unarchived`: the members for whom this message
    /// un-archived the chat, with their settings now (filled by the persisting
    /// statement, on the first new message of each chat in the batch).
    Persisted {
        message: Message,
        notify: bool,
        unarchived: Vec<(Uuid, ChatSettings)>,
    },
    /// Can never be persisted.
    Rejected(Rejection),
}

/// The database's view of the chats a batch touches.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Last sequence per existing chat.
    pub last_sequence: HashMap<Uuid, i64>,
    /// `(chat, user)` pairs of participants among the batch's senders.
    pub members: HashSet<(Uuid, Uuid)>,
    /// Stored messages by idempotency key, with the broker message that stored them.
    pub stored: HashMap<IdemKey, (Uuid, Message)>,
    /// Participants with their usernames, for the chats where a command may mention
    /// someone (its content has an `@`).
    pub rosters: HashMap<Uuid, Roster>,
    /// The batch's senders who are banned now, with the ban's reason: their commands
    /// not yet stored are rejected (dead-lettered), not persisted.
    pub banned: HashMap<Uuid, String>,
}

/// Who can be mentioned in a chat.
#[derive(Debug, Default, Clone)]
pub struct Roster {
    pub group: bool,
    pub participants: Vec<(Uuid, String)>,
}

/// The result of planning a batch.
#[derive(Debug, Default)]
pub struct Plan {
    pub outcomes: Vec<Outcome>,
    /// New rows to insert: (broker message id, message).
    pub fresh: Vec<(Uuid, Message)>,
    /// The new last sequence of each chat that got rows.
    pub last_sequence: HashMap<Uuid, i64>,
}

pub fn plan(cmds: &[SendCommand], mut db: Snapshot, now: DateTime<Utc>) -> Plan {
    let mut plan = Plan {
        outcomes: Vec::with_capacity(cmds.len()),
        ..Plan::default()
    };
    for cmd in cmds {
        let key = (cmd.chat_id, cmd.sender_id, cmd.client_message_id);
        let outcome = if let Some((broker_id, m)) = db.stored.get(&key) {
            Outcome::Persisted {
                message: Message {
                    reply_to: cmd.reply_to.clone().or_else(|| m.reply_to.clone()),
                    // The stored row's attachments are read with the message; the
                    // command's are the same uploads, re-announced.
                    attachments: cmd.attachments.clone(),
                    ..m.clone()
                },
                notify: *broker_id == cmd.broker_message_id,
                unarchived: Vec::new(),
            }
        } else if let Some(reason) = db.banned.get(&cmd.sender_id) {
            Outcome::Rejected(Rejection::Banned(reason.clone()))
        } else if let Some(last) = db.last_sequence.get_mut(&cmd.chat_id) {
            if db.members.contains(&(cmd.chat_id, cmd.sender_id)) {
                *last += 1;
                let m = Message {
                    id: Uuid::now_v7(),
                    chat_id: cmd.chat_id,
                    sender_id: cmd.sender_id,
                    client_message_id: cmd.client_message_id,
                    content: cmd.content.clone(),
                    message_type: "text".into(),
                    status: "sent".into(),
                    delivered_count: 0,
                    read_count: 0,
                    sequence: *last,
                    sent_at: now,
                    reply_to: cmd.reply_to.clone(),
                    forwarded_from: cmd.forwarded_from,
                    mentions: db.rosters.get(&cmd.chat_id).map_or_else(Vec::new, |r| {
                        mention::resolve(&cmd.content, r.group, cmd.sender_id, &r.participants)
                    }),
                    bot: cmd.bot.clone(),
                    attachments: cmd.attachments.clone(),
                    ..Message::default()
                };
                plan.last_sequence.insert(cmd.chat_id, *last);
                db.stored.insert(key, (cmd.broker_message_id, m.clone()));
                plan.fresh.push((cmd.broker_message_id, m.clone()));
                Outcome::Persisted {
                    message: m,
                    notify: true,
                    unarchived: Vec::new(),
                }
            } else {
                Outcome::Rejected(Rejection::NotParticipant)
            }
        } else {
            Outcome::Rejected(Rejection::ChatGone)
        };
        plan.outcomes.push(outcome);
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(chat: Uuid, sender: Uuid) -> SendCommand {
        SendCommand {
            broker_message_id: Uuid::new_v4(),
            chat_id: chat,
            sender_id: sender,
            client_message_id: Uuid::new_v4(),
            content: "x".into(),
            accepted_at: Utc::now(),
            reply_to: None,
            forwarded_from: None,
            bot: None,
            attachments: Vec::new(),
        }
    }

    fn seq(o: &Outcome) -> i64 {
        match o {
            Outcome::Persisted { message, .. } => message.sequence,
            Outcome::Rejected(r) => panic!("rejected: {r}"),
        }
    }

    #[test]
    fn sequences_continue_per_chat_without_gaps() {
        let (c1, c2, u) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let db = Snapshot {
            last_sequence: HashMap::from([(c1, 7), (c2, 0)]),
            members: HashSet::from([(c1, u), (c2, u)]),
            ..Snapshot::default()
        };
        let cmds = [cmd(c1, u), cmd(c2, u), cmd(c1, u), cmd(c2, u)];
        let p = plan(&cmds, db, Utc::now());
        assert_eq!(
            p.outcomes.iter().map(seq).collect::<Vec<_>>(),
            vec![8, 1, 9, 2]
        );
        assert_eq!(p.last_sequence, HashMap::from([(c1, 9), (c2, 2)]));
        assert_eq!(p.fresh.len(), 4);
    }

    #[test]
    fn duplicates_reuse_the_stored_message() {
        let (c, u) = (Uuid::new_v4(), Uuid::new_v4());
        let db = Snapshot {
            last_sequence: HashMap::from([(c, 0)]),
            members: HashSet::from([(c, u)]),
            ..Snapshot::default()
        };
        let first = cmd(c, u);
        let redelivered = first.clone();
        let client_retry = SendCommand {
            broker_message_id: Uuid::new_v4(),
            ..first.clone()
        };
        let p = plan(
            &[first, redelivered, client_retry, cmd(c, u)],
            db,
            Utc::now(),
        );
        assert_eq!(
            p.outcomes.iter().map(seq).collect::<Vec<_>>(),
            vec![1, 1, 1, 2],
            "no gap after duplicates"
        );
        let notify: Vec<bool> = p
            .outcomes
            .iter()
            .map(|o| matches!(o, Outcome::Persisted { notify: true, .. }))
            .collect();
        assert_eq!(
            notify,
            vec![true, true, false, true],
            "a client retry is not re-notified"
        );
        assert_eq!(p.fresh.len(), 2);
    }

    #[test]
    fn stored_rows_win_over_membership_and_rejections_take_no_sequence() {
        let (c, gone, u, outsider) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        let old = cmd(c, outsider);
        let stored_msg = plan(
            std::slice::from_ref(&old),
            Snapshot {
                last_sequence: HashMap::from([(c, 0)]),
                members: HashSet::from([(c, outsider)]),
                ..Snapshot::default()
            },
            Utc::now(),
        )
        .fresh
        .remove(0);
        // The sender has since left; the redelivery of what was stored is still re-notified.
        let db = Snapshot {
            last_sequence: HashMap::from([(c, 1)]),
            members: HashSet::from([(c, u)]),
            stored: HashMap::from([((c, outsider, old.client_message_id), stored_msg)]),
            ..Snapshot::default()
        };
        let p = plan(
            &[old, cmd(c, outsider), cmd(gone, u), cmd(c, u)],
            db,
            Utc::now(),
        );
        assert_eq!(seq(&p.outcomes[0]), 1);
        assert_eq!(p.outcomes[1], Outcome::Rejected(Rejection::NotParticipant));
        assert_eq!(p.outcomes[2], Outcome::Rejected(Rejection::ChatGone));
        assert_eq!(seq(&p.outcomes[3]), 2);
    }

    #[test]
    fn banned_senders_are_rejected_with_the_reason_and_take_no_sequence() {
        let (c, ok, banned) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let stored = cmd(c, banned);
        let stored_msg = plan(
            std::slice::from_ref(&stored),
            Snapshot {
                last_sequence: HashMap::from([(c, 0)]),
                members: HashSet::from([(c, banned)]),
                ..Snapshot::default()
            },
            Utc::now(),
        )
        .fresh
        .remove(0);
        let db = Snapshot {
            last_sequence: HashMap::from([(c, 1)]),
            members: HashSet::from([(c, ok), (c, banned)]),
            stored: HashMap::from([((c, banned, stored.client_message_id), stored_msg)]),
            banned: HashMap::from([(banned, "spam".to_string())]),
            ..Snapshot::default()
        };
        let p = plan(
            &[
                cmd(c, banned),
                cmd(c, ok),
                stored,
                cmd(c, banned),
                cmd(c, ok),
            ],
            db,
            Utc::now(),
        );
        let banned_outcome = Outcome::Rejected(Rejection::Banned("spam".into()));
        assert_eq!(p.outcomes[0], banned_outcome);
        assert_eq!(seq(&p.outcomes[1]), 2);
        // Persisted before the ban: a redelivery is the stored message, not a dead letter.
        assert_eq!(seq(&p.outcomes[2]), 1);
        assert_eq!(p.outcomes[3], banned_outcome);
        assert_eq!(seq(&p.outcomes[4]), 3);
        assert_eq!(p.fresh.len(), 2);
        assert_eq!(p.last_sequence, HashMap::from([(c, 3)]));
    }
}
