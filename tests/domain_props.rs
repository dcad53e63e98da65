//! Property-based tests of the domain rules (no I/O): content normalisation, partitioning,
//! sequence planning of a batch with duplicates and rejections, emoji validation, mention
//! parsing and resolution.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use courier::domain::{
    lifecycle::validate_emoji,
    mention::{parse, resolve},
    message::{MAX_CONTENT_CHARS, SendCommand, normalize_content},
    partition::partition_of,
    sequence::{Outcome, Snapshot, plan},
};
use proptest::prelude::*;
use uuid::Uuid;

proptest! {
    /// Whatever the text, what `@` names is a well-formed username (3–32 of
    /// `[a-z0-9_.-]`, not ending the sentence with `.` or `-`), each at most once; a
    /// username written as `@Name` among any words is found; inside an e-mail address
    /// it is not.
    #[test]
    fn mentions_are_well_formed_and_found(
        text in "\\PC{0,200}",
        name in "[a-z0-9][a-z0-9_.-]{1,30}[a-z0-9]",
        before in "[ ,(]|",
        after in "[ ,.!?)]|",
    ) {
        let named = parse(&text);
        let mut seen = HashSet::new();
        for u in &named.usernames {
            prop_assert!((3..=32).contains(&u.len()), "{u}");
            prop_assert!(u.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c)), "{u}");
            prop_assert!(!u.ends_with('.') && !u.ends_with('-'), "{u}");
            prop_assert!(seen.insert(u.clone()), "{u} twice");
            prop_assert_ne!(u.as_str(), "all");
        }
        let written = format!("{text} {before}@{}{after} tail", name.to_uppercase());
        prop_assert!(parse(&written).usernames.contains(&name) || name == "all");
        let email = format!("x{}@{}.com", name, name);
        prop_assert!(parse(&email).usernames.is_empty(), "an e-mail address names nobody");
    }

    /// Only participants are ever mentioned, each once; `@all` names every other
    /// participant of a group and nobody in a direct chat (bar one named "all").
    #[test]
    fn mentions_resolve_to_participants_only(
        names in proptest::collection::hash_set("[a-z]{3,8}", 1..6),
        text in "\\PC{0,80}",
        pick in proptest::collection::vec(0usize..8, 0..4),
        all in any::<bool>(),
        group in any::<bool>(),
    ) {
        let participants: Vec<(Uuid, String)> = names.into_iter().map(|n| (Uuid::new_v4(), n)).collect();
        let sender = participants[0].0;
        let mut content = text.clone();
        for i in &pick {
            let name = participants.get(*i).map_or("stranger", |p| p.1.as_str());
            content.push_str(&format!(" @{name}"));
        }
        if all {
            content.push_str(" @all");
        }
        let got = resolve(&content, group, sender, &participants);
        let ids: HashSet<Uuid> = participants.iter().map(|p| p.0).collect();
        prop_assert!(got.iter().all(|u| ids.contains(u)));
        prop_assert_eq!(got.iter().collect::<HashSet<_>>().len(), got.len(), "each once");
        for i in &pick {
            if let Some(p) = participants.get(*i) {
                prop_assert!(got.contains(&p.0), "@{} is mentioned", p.1);
            }
        }
        if all && group {
            prop_assert!(participants.iter().filter(|p| p.0 != sender).all(|p| got.contains(&p.0)));
        }
    }

    #[test]
    fn content_is_trimmed_bounded_and_idempotent(s in "\\PC{0,50}|[ \\t\\n]{0,3}\\PC{3990,4010}[ \\t\\n]{0,3}|.*\0.*") {
        let trimmed = s.trim();
        let n = trimmed.chars().count();
        match normalize_content(&s) {
            Ok(c) => {
                prop_assert_eq!(c.as_str(), trimmed);
                prop_assert!((1..=MAX_CONTENT_CHARS).contains(&n));
                prop_assert!(!c.contains('\0'));
                prop_assert_eq!(normalize_content(&c), Ok(c.clone()), "idempotent");
            }
            Err(_) => prop_assert!(n == 0 || n > MAX_CONTENT_CHARS || trimmed.contains('\0')),
        }
    }

    #[test]
    fn a_chat_always_maps_to_the_same_partition(bytes in any::<[u8; 16]>(), count in 1u16..512) {
        let chat = Uuid::from_bytes(bytes);
        let p = partition_of(chat, count);
        prop_assert!(p < count);
        prop_assert_eq!(p, partition_of(chat, count));
    }

    #[test]
    fn shortcodes_are_emojis_and_other_ascii_is_not(code in "[a-z0-9_+-]{1,32}", bad in "[A-Z /<>.]{1,8}") {
        prop_assert!(validate_emoji(&code).is_ok());
        let mixed = format!("{code}{bad}");
        prop_assert!(validate_emoji(&mixed).is_err());
    }

    /// Any batch over a few chats and senders, with client retries (same key, new broker
    /// id) and redeliveries (same command): each chat's new messages take the next
    /// sequences without gaps; a duplicate yields the stored message; only outsiders and
    /// unknown chats are rejected, and they take no sequence.
    #[test]
    fn batches_get_gap_free_sequences(
        picks in prop::collection::vec((0usize..3, 0usize..3, 0usize..4, 0u8..3), 1..60),
        starts in prop::collection::vec(0i64..50, 3),
    ) {
        let chats: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        let users: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        let client_ids: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
        // Chat 2 does not exist; user 2 is in no chat.
        let db = Snapshot {
            last_sequence: HashMap::from([(chats[0], starts[0]), (chats[1], starts[1])]),
            members: HashSet::from([(chats[0], users[0]), (chats[0], users[1]), (chats[1], users[0]), (chats[1], users[1])]),
            ..Snapshot::default()
        };
        let mut cmds: Vec<SendCommand> = Vec::new();
        for (c, u, k, kind) in picks {
            let key_twin = cmds.iter().find(|x| x.chat_id == chats[c] && x.sender_id == users[u] && x.client_message_id == client_ids[k]).cloned();
            let cmd = match (kind, key_twin) {
                (0, Some(twin)) => twin,                                              // redelivery
                (1, Some(twin)) => SendCommand { broker_message_id: Uuid::now_v7(), ..twin }, // client retry
                _ => SendCommand {
                    broker_message_id: Uuid::now_v7(),
                    chat_id: chats[c],
                    sender_id: users[u],
                    client_message_id: client_ids[k],
                    content: "x".into(),
                    accepted_at: Utc::now(),
                    reply_to: None,
                    forwarded_from: None,
                    bot: None,
                    attachments: Vec::new(),
                },
            };
            cmds.push(cmd);
        }
        let p = plan(&cmds, db, Utc::now());
        prop_assert_eq!(p.outcomes.len(), cmds.len());
        let mut first_seen: HashMap<(Uuid, Uuid, Uuid), (i64, Uuid)> = HashMap::new();
        let mut per_chat: HashMap<Uuid, Vec<i64>> = HashMap::new();
        for (cmd, o) in cmds.iter().zip(&p.outcomes) {
            let key = (cmd.chat_id, cmd.sender_id, cmd.client_message_id);
            let member = cmd.chat_id != chats[2] && cmd.sender_id != users[2];
            match o {
                Outcome::Rejected(_) => prop_assert!(!member),
                Outcome::Persisted { message, notify, .. } => {
                    prop_assert!(member);
                    match first_seen.get(&key) {
                        Some((seq, broker)) => {
                            prop_assert_eq!(message.sequence, *seq, "a duplicate is the stored message");
                            prop_assert_eq!(*notify, *broker == cmd.broker_message_id, "only a redelivery is re-notified");
                        }
                        None => {
                            prop_assert!(*notify);
                            first_seen.insert(key, (message.sequence, cmd.broker_message_id));
                            per_chat.entry(cmd.chat_id).or_default().push(message.sequence);
                        }
                    }
                }
            }
        }
        for (i, chat) in chats.iter().take(2).enumerate() {
            let seqs = per_chat.remove(chat).unwrap_or_default();
            let expected: Vec<i64> = (1..=seqs.len() as i64).map(|n| starts[i] + n).collect();
            prop_assert_eq!(&seqs, &expected, "chat {}: next sequences, no gaps", i);
            let last = p.last_sequence.get(chat).copied().unwrap_or(starts[i]);
            prop_assert_eq!(last, starts[i] + seqs.len() as i64);
        }
        prop_assert_eq!(p.fresh.len(), first_seen.len());
    }
}
