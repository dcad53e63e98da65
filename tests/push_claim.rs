//! The pusher's claim script against a real Redis: one push per coalescing window,
//! a redelivery after a push is a duplicate, and the races a crash sets up (a
//! redelivered lead, the flush of its window, later messages of the chat) push the
//! chat's latest notification once, not once per racer.

mod common;

use std::time::Duration;

use common::test_config;
use courier::cache::{
    Cache,
    push::{Claim, Claimant},
};
use uuid::Uuid;

const WINDOW: Duration = Duration::from_secs(60);
const SEND: Claim = Claim::Send;
const FLUSH: Claim = Claim::Coalesced {
    schedule_flush: true,
};
const QUIET: Claim = Claim::Coalesced {
    schedule_flush: false,
};
const MSG: Claimant = Claimant::Message { mention: false };

async fn cache() -> Cache {
    Cache::connect(&test_config(&[]), Duration::from_secs(5))
        .await
        .expect("redis")
}

#[tokio::test]
async fn one_push_per_window_then_a_flush_and_a_sent_push_is_a_duplicate() {
    let c = cache().await;
    let dc = (Uuid::new_v4(), Uuid::new_v4());
    let (m1, m2, m3) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    assert_eq!(c.push_claim(dc, (m1, 1), WINDOW, MSG).await.unwrap(), SEND);
    c.push_sent(dc.0, m1).await.unwrap();
    assert_eq!(
        c.push_claim(dc, (m1, 1), WINDOW, MSG).await.unwrap(),
        Claim::Duplicate,
        "a redelivery after the push"
    );
    assert_eq!(c.push_claim(dc, (m2, 2), WINDOW, MSG).await.unwrap(), FLUSH);
    assert_eq!(c.push_claim(dc, (m3, 3), WINDOW, MSG).await.unwrap(), QUIET);
    let trail = c.push_trail(dc.0, dc.1).await.unwrap();
    assert_eq!(trail.pushed_seq, 1);
    assert_eq!(
        c.push_claim(dc, (m3, 3), WINDOW, Claimant::Flush)
            .await
            .unwrap(),
        SEND,
        "the flush pushes the latest"
    );
    assert_eq!(
        c.push_claim(dc, (m3, 3), WINDOW, MSG).await.unwrap(),
        QUIET,
        "the latest message's own claim, within the flush's window"
    );
}

#[tokio::test]
async fn a_crashed_lead_pushes_again_once_and_racing_claims_are_covered() {
    let c = cache().await;
    let dc = (Uuid::new_v4(), Uuid::new_v4());
    let (lead, later) = (Uuid::new_v4(), Uuid::new_v4());
    let zero = Duration::ZERO; // every claim opens a new window
    // The lead took the push covering sequence 5, and the pusher died before recording it.
    assert_eq!(c.push_claim(dc, (lead, 5), zero, MSG).await.unwrap(), SEND);
    // Redelivered: it may not have gone out, so it pushes again, now covering 9.
    assert_eq!(c.push_claim(dc, (lead, 9), zero, MSG).await.unwrap(), SEND);
    // A later message of the chat, and the flush of the lead's window, race it: covered.
    assert_eq!(
        c.push_claim(dc, (later, 9), zero, MSG).await.unwrap(),
        QUIET
    );
    assert_eq!(
        c.push_claim(dc, (later, 9), zero, Claimant::Flush)
            .await
            .unwrap(),
        QUIET
    );
    // A flush is never taken for the redelivery of a message that led with the same id.
    let m = Uuid::new_v4();
    assert_eq!(c.push_claim(dc, (m, 10), zero, MSG).await.unwrap(), SEND);
    assert_eq!(
        c.push_claim(dc, (m, 10), zero, Claimant::Flush)
            .await
            .unwrap(),
        QUIET
    );
    // Anything newer pushes.
    assert_eq!(
        c.push_claim(dc, (Uuid::new_v4(), 11), zero, MSG)
            .await
            .unwrap(),
        SEND
    );
}

#[tokio::test]
async fn concurrent_claims_of_one_notification_push_it_once() {
    let c = cache().await;
    let dc = (Uuid::new_v4(), Uuid::new_v4());
    let claims = (0..16).map(|i| {
        let c = c.clone();
        let by = if i % 2 == 0 { MSG } else { Claimant::Flush };
        async move {
            c.push_claim(dc, (Uuid::new_v4(), 7), Duration::ZERO, by)
                .await
                .unwrap()
        }
    });
    let out = futures::future::join_all(claims).await;
    assert_eq!(out.iter().filter(|c| **c == SEND).count(), 1, "{out:?}");
}
