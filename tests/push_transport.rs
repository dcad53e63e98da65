//! The push transport against local receivers that do what the push services do to a
//! request and no more: a Web Push service that checks the VAPID JWT with the public key
//! and decrypts the body with the subscription's private key, and an FCM service whose
//! token endpoint checks the RS256 assertion and whose send endpoint checks the bearer.
//! Each answers the statuses a test queues; every [`Outcome`] is asserted.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Form, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use chrono::{DateTime, Utc};
use courier::{
    config::Config,
    domain::push::Payload,
    push::{Outcome, SendOpts, Sender, Target, Urgency, vapid},
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use uuid::Uuid;

const SUBJECT: &str = "mailto:ops@courier.test";
const CLIENT_EMAIL: &str = "pusher@courier-test.iam.gserviceaccount.com";
const PROJECT: &str = "courier-test";
const RSA_KEY: &str = include_str!("fixtures/rs256-test.key");
const RSA_PUB: &str = include_str!("fixtures/rs256-test.pub");

/// An answer a receiver gives: status, `Retry-After`, body.
#[derive(Clone)]
struct Reply(u16, Option<String>, String);

impl Reply {
    fn status(s: u16) -> Self {
        Reply(s, None, String::new())
    }
    fn into_response(self) -> Response {
        let mut res = (StatusCode::from_u16(self.0).unwrap(), self.2).into_response();
        if let Some(v) = self.1 {
            res.headers_mut().insert("retry-after", v.parse().unwrap());
        }
        res
    }
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

fn config(vars: &[(&str, String)]) -> Config {
    let mut map: HashMap<String, String> = HashMap::from([
        (
            "JWT_SECRET".into(),
            "0123456789abcdef0123456789abcdef".into(),
        ),
        ("PUSH_ALLOW_HTTP_ENDPOINTS".into(), "true".into()),
    ]);
    map.extend(vars.iter().map(|(k, v)| (k.to_string(), v.clone())));
    Config::from_lookup(|k| map.get(k).cloned()).unwrap()
}

fn payload(chat: Uuid) -> Payload {
    let at = DateTime::<Utc>::from_timestamp_millis(1_767_323_045_678).unwrap();
    Payload::new(
        chat,
        Uuid::now_v7(),
        "Team ünïcode",
        "see you at 10 \"sharp\"",
        20,
        at,
    )
}

fn opts(chat: Uuid, urgency: Urgency) -> SendOpts {
    SendOpts {
        ttl: Duration::from_secs(60),
        urgency,
        topic: chat.simple().to_string(),
        collapse_key: chat.to_string(),
    }
}

#[path = "push_transport/fcm.rs"]
mod fcm;
#[path = "push_transport/webpush.rs"]
mod webpush;
