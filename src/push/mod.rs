//! The push transport: one notification to one device, by Web Push (RFC 8030 delivery,
//! RFC 8291 encryption, RFC 8292 VAPID) or FCM HTTP v1, and what the push service said,
//! as an [`Outcome`] the pusher acts on (prune, retry, dead-letter). No queue, no
//! database: the pusher role decides who gets what.

mod ece;
mod fcm;
mod http;
pub mod vapid;
mod webpush;

use std::{sync::Arc, time::Duration};

use crate::{config::PushConfig, domain::push::Payload};

/// Where a notification goes: a subscription as the registry stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A browser's `PushSubscription`: endpoint URL, `p256dh` and `auth` (base64url).
    WebPush {
        endpoint: String,
        p256dh: String,
        auth: String,
    },
    /// An FCM registration token.
    Fcm { token: String },
}

/// What the push service answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted (2xx).
    Sent,
    /// The subscription no longer exists (404, 410, FCM `UNREGISTERED`): delete it.
    Gone,
    /// Try again later (429, 5xx, a network failure or timeout, an expired FCM token);
    /// `after` is the service's `Retry-After`, if it gave one.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// Refused for good (another 4xx, a malformed subscription, push not configured).
    Failed { reason: String },
}

/// RFC 8030 §5.3 `Urgency` (FCM: Android priority, APNs priority).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Urgency {
    #[default]
    Normal,
    /// Mentions.
    High,
}

impl Urgency {
    fn as_str(self) -> &'static str {
        match self {
            Urgency::Normal => "normal",
            Urgency::High => "high",
        }
    }
}

/// How one notification is delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendOpts {
    /// How long the push service keeps it for an unreachable device (RFC 8030 `TTL`,
    /// FCM `android.ttl`, APNs `apns-expiration`).
    pub ttl: Duration,
    pub urgency: Urgency,
    /// RFC 8030 `Topic`: a newer notification with the same topic replaces an older
    /// one. At most 32 base64url characters (the chat id's simple hex form); another
    /// value is not sent.
    pub topic: String,
    /// FCM `collapse_key`, Android `tag`, APNs `apns-collapse-id` and `thread-id` (the chat).
    pub collapse_key: String,
}

/// Sends notifications. Cheap to clone: the HTTP client, the VAPID tokens and the FCM
/// access token are shared.
#[derive(Clone)]
pub struct Sender {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest_tls::Client,
    webpush: Option<webpush::WebPush>,
    fcm: Option<fcm::Fcm>,
}

impl Sender {
    /// Checks the keys and the service account again and builds the HTTP client.
    pub fn new(cfg: &PushConfig) -> anyhow::Result<Self> {
        crate::tls::install_crypto_provider();
        let http = http::client()?;
        let webpush = cfg
            .vapid
            .as_ref()
            .map(|v| webpush::WebPush::new(v, cfg.allow_http_endpoints))
            .transpose()?;
        let fcm = cfg.fcm.as_ref().map(fcm::Fcm::new).transpose()?;
        Ok(Self {
            inner: Arc::new(Inner { http, webpush, fcm }),
        })
    }

    /// Whether Web Push (the VAPID variables) is configured.
    pub fn webpush_enabled(&self) -> bool {
        self.inner.webpush.is_some()
    }

    /// Whether FCM (project and service account) is configured.
    pub fn fcm_enabled(&self) -> bool {
        self.inner.fcm.is_some()
    }

    /// Delivers `p` to `target` once (no retry here) and classifies the answer.
    pub async fn send(&self, target: &Target, p: &Payload, opts: &SendOpts) -> Outcome {
        let http = &self.inner.http;
        match target {
            Target::WebPush {
                endpoint,
                p256dh,
                auth,
            } => match &self.inner.webpush {
                Some(w) => w.send(http, endpoint, p256dh, auth, p, opts).await,
                None => Outcome::Failed {
                    reason: "Web Push is not configured (PUSH_VAPID_*)".into(),
                },
            },
            Target::Fcm { token } => match &self.inner.fcm {
                Some(f) => f.send(http, token, p, opts).await,
                None => Outcome::Failed {
                    reason: "FCM is not configured (FCM_PROJECT_ID, FCM_SERVICE_ACCOUNT_FILE)"
                        .into(),
                },
            },
        }
    }
}
