//! Delivery receipts: each participant's forward-only delivered and read marks, and a
//! message's status as its sender sees it, derived from the other participants' marks.

use serde::Serialize;
use uuid::Uuid;

use super::message::Message;

/// One participant's marks in a chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Marks {
    pub user_id: Uuid,
    /// Everything up to here reached a live socket or stream of the user (or was read).
    pub delivered_sequence: i64,
    /// Everything up to here was read by the user.
    pub read_sequence: i64,
}

/// `status`, `deliveredCount`, `readCount` of message `sequence` sent by `sender`:
/// `read` once every other participant's read mark reached it, else `delivered` once
/// every other's delivered mark did, else `sent`. A chat with nobody else: `sent`.
pub fn status_of(sender: Uuid, sequence: i64, marks: &[Marks]) -> (&'static str, i64, i64) {
    let mut others = 0;
    let (mut delivered, mut read) = (0, 0);
    for m in marks.iter().filter(|m| m.user_id != sender) {
        others += 1;
        // A read mark implies delivery, whatever the delivered mark says.
        if m.delivered_sequence.max(m.read_sequence) >= sequence {
            delivered += 1;
        }
        if m.read_sequence >= sequence {
            read += 1;
        }
    }
    let status = match () {
        _ if others == 0 => "sent",
        _ if read == others => "read",
        _ if delivered == others => "delivered",
        _ => "sent",
    };
    (status, delivered, read)
}

/// Fills `status`, `deliveredCount` and `readCount` of a message from its chat's marks.
pub fn apply(message: &mut Message, marks: &[Marks]) {
    let (status, delivered, read) = status_of(message.sender_id, message.sequence, marks);
    message.status = status.to_string();
    message.delivered_count = delivered;
    message.read_count = read;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(user: Uuid, delivered: i64, read: i64) -> Marks {
        Marks {
            user_id: user,
            delivered_sequence: delivered,
            read_sequence: read,
        }
    }

    #[test]
    fn direct_chat_moves_sent_delivered_read() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let marks = |d, r| vec![mark(a, 0, 0), mark(b, d, r)];
        assert_eq!(status_of(a, 3, &marks(2, 0)), ("sent", 0, 0));
        assert_eq!(status_of(a, 3, &marks(3, 0)), ("delivered", 1, 0));
        assert_eq!(status_of(a, 3, &marks(5, 3)), ("read", 1, 1));
        assert_eq!(
            status_of(a, 3, &marks(0, 4)),
            ("read", 1, 1),
            "read implies delivered"
        );
    }

    #[test]
    fn group_needs_every_other_participant() {
        let s = Uuid::new_v4();
        let others: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
        let mut marks = vec![mark(s, 0, 0)];
        marks.extend(others.iter().map(|u| mark(*u, 10, 0)));
        assert_eq!(status_of(s, 10, &marks), ("delivered", 4, 0));
        marks[1].read_sequence = 10;
        marks[2].read_sequence = 12;
        assert_eq!(status_of(s, 10, &marks), ("delivered", 4, 2));
        marks[3].read_sequence = 10;
        marks[4].read_sequence = 10;
        assert_eq!(status_of(s, 10, &marks), ("read", 4, 4));
        marks[4].delivered_sequence = 9;
        marks[4].read_sequence = 9;
        assert_eq!(status_of(s, 10, &marks), ("sent", 3, 3));
        assert_eq!(status_of(s, 1, &[mark(s, 5, 5)]), ("sent", 0, 0), "alone");
    }
}
