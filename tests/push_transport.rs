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

// ---- Web Push ------------------------------------------------------------------------

/// A push service for one subscription (the browser's key pair and auth secret).
struct WebPushService {
    ua_secret: p256::SecretKey,
    auth: [u8; 16],
    vapid_public: String,
    origin: Mutex<String>,
    replies: Mutex<VecDeque<Reply>>,
    /// Each accepted request: its headers, the VAPID JWT, the decrypted body.
    seen: Mutex<Vec<(HeaderMap, String, Vec<u8>)>>,
}

impl WebPushService {
    /// What a real push service checks; `Err` is answered 400 with the reason.
    fn check(&self, headers: &HeaderMap, body: Bytes) -> Result<(String, Vec<u8>), String> {
        let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
        let (t, k) = h("authorization")
            .strip_prefix("vapid t=")
            .and_then(|r| r.split_once(", k="))
            .ok_or("no vapid authorization")?;
        if k != self.vapid_public {
            return Err(format!("k is not the VAPID public key: {k}"));
        }
        let point = B64.decode(k).map_err(|e| e.to_string())?;
        let key =
            DecodingKey::from_ec_components(&B64.encode(&point[1..33]), &B64.encode(&point[33..]))
                .map_err(|e| e.to_string())?;
        let mut v = Validation::new(Algorithm::ES256);
        v.set_audience(&[self.origin.lock().unwrap().as_str()]);
        v.set_required_spec_claims(&["exp", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Value>(t, &key, &v)
            .map_err(|e| format!("VAPID JWT: {e}"))?
            .claims;
        if claims["sub"] != SUBJECT {
            return Err(format!("sub {}", claims["sub"]));
        }
        let exp = claims["exp"].as_i64().unwrap_or(0);
        if exp > Utc::now().timestamp() + 24 * 3600 {
            return Err("exp more than 24 h ahead".into());
        }
        if h("content-encoding") != "aes128gcm" || h("ttl").is_empty() {
            return Err("content-encoding or TTL missing".into());
        }
        let auth = web_push_native::Auth::from(self.auth);
        let plain = web_push_native::decrypt(body.to_vec(), &self.ua_secret, &auth)
            .map_err(|e| format!("cannot decrypt: {e}"))?;
        Ok((t.to_string(), plain))
    }
}

async fn webpush_receive(
    State(s): State<Arc<WebPushService>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match s.check(&headers, body) {
        Err(reason) => (StatusCode::BAD_REQUEST, reason).into_response(),
        Ok((jwt, plain)) => {
            s.seen.lock().unwrap().push((headers, jwt, plain));
            let reply = s.replies.lock().unwrap().pop_front();
            reply.unwrap_or(Reply::status(201)).into_response()
        }
    }
}

/// A receiver on a local port; its subscription as a [`Target`].
async fn webpush_service(vapid_public: &str, replies: Vec<Reply>) -> (Arc<WebPushService>, Target) {
    let (ua_public, ua_private) = vapid::generate();
    let auth: [u8; 16] = rand::random();
    let service = Arc::new(WebPushService {
        ua_secret: vapid::private_key(&ua_private).unwrap(),
        auth,
        vapid_public: vapid_public.to_string(),
        origin: Mutex::new(String::new()),
        replies: Mutex::new(replies.into()),
        seen: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/push/{id}", post(webpush_receive))
        .with_state(service.clone());
    let addr = serve(app).await;
    *service.origin.lock().unwrap() = format!("http://{addr}");
    let target = Target::WebPush {
        endpoint: format!("http://{addr}/push/{}", Uuid::new_v4()),
        p256dh: ua_public,
        auth: B64.encode(auth),
    };
    (service, target)
}

fn vapid_config(allow_http: bool) -> (Config, String) {
    let (public, private) = vapid::generate();
    let cfg = config(&[
        ("PUSH_VAPID_PUBLIC_KEY", public.clone()),
        ("PUSH_VAPID_PRIVATE_KEY", private),
        ("PUSH_VAPID_SUBJECT", SUBJECT.into()),
        ("PUSH_ALLOW_HTTP_ENDPOINTS", allow_http.to_string()),
    ]);
    (cfg, public)
}

#[tokio::test]
async fn web_push_is_encrypted_authorised_and_classified() {
    let (cfg, public) = vapid_config(true);
    let sender = Sender::new(&cfg.push).unwrap();
    assert!(sender.webpush_enabled() && !sender.fcm_enabled());
    let retry_at = (Utc::now() + chrono::Duration::seconds(30))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let (service, target) = webpush_service(
        &public,
        vec![
            Reply::status(201),
            Reply::status(201),
            Reply::status(410),
            Reply::status(404),
            Reply(429, Some("7".into()), String::new()),
            Reply(503, Some(retry_at), String::new()),
            Reply::status(503),
            Reply(400, None, "UnsupportedEncoding\nsecond line".into()),
        ],
    )
    .await;
    let chat = Uuid::now_v7();
    let p = payload(chat);

    assert_eq!(
        sender.send(&target, &p, &opts(chat, Urgency::High)).await,
        Outcome::Sent
    );
    {
        let seen = service.seen.lock().unwrap();
        let (headers, _, plain) = &seen[0];
        assert_eq!(plain, &p.to_json(), "the decrypted body is the payload");
        let back: Payload = serde_json::from_slice(plain).unwrap();
        assert_eq!(back, p);
        let h = |n: &str| headers[n].to_str().unwrap().to_string();
        assert_eq!(h("ttl"), "60");
        assert_eq!(h("urgency"), "high");
        assert_eq!(h("topic"), chat.simple().to_string());
        assert_eq!(h("content-type"), "application/octet-stream");
    }
    assert_eq!(
        sender.send(&target, &p, &opts(chat, Urgency::Normal)).await,
        Outcome::Sent
    );
    {
        let seen = service.seen.lock().unwrap();
        assert_eq!(seen[1].0["urgency"], "normal");
        assert_eq!(seen[1].1, seen[0].1, "the VAPID token is reused");
    }
    assert_eq!(
        sender.send(&target, &p, &opts(chat, Urgency::Normal)).await,
        Outcome::Gone
    );
    assert_eq!(
        sender.send(&target, &p, &opts(chat, Urgency::Normal)).await,
        Outcome::Gone
    );
    match sender.send(&target, &p, &opts(chat, Urgency::Normal)).await {
        Outcome::Retry { after, reason } => {
            assert_eq!(after, Some(Duration::from_secs(7)));
            assert!(reason.contains("429"), "{reason}");
        }
        other => panic!("429: {other:?}"),
    }
    match sender.send(&target, &p, &opts(chat, Urgency::Normal)).await {
        Outcome::Retry { after: Some(d), .. } => {
            assert!(
                d > Duration::from_secs(25) && d <= Duration::from_secs(30),
                "{d:?}"
            );
        }
        other => panic!("503 with an HTTP-date: {other:?}"),
    }
    match sender.send(&target, &p, &opts(chat, Urgency::Normal)).await {
        Outcome::Retry {
            after: None,
            reason,
        } => assert!(reason.contains("503"), "{reason}"),
        other => panic!("503: {other:?}"),
    }
    match sender.send(&target, &p, &opts(chat, Urgency::Normal)).await {
        Outcome::Failed { reason } => {
            assert!(
                reason.contains("400") && reason.contains("UnsupportedEncoding"),
                "{reason}"
            );
            assert!(!reason.contains('\n'), "{reason}");
        }
        other => panic!("400: {other:?}"),
    }
    assert_eq!(service.seen.lock().unwrap().len(), 8);
    assert!(service.replies.lock().unwrap().is_empty());
}

#[tokio::test]
async fn web_push_failures_without_an_answer() {
    let (cfg, public) = vapid_config(true);
    let sender = Sender::new(&cfg.push).unwrap();
    let (service, target) = webpush_service(&public, vec![]).await;
    let chat = Uuid::now_v7();
    let p = payload(chat);
    let Target::WebPush {
        endpoint,
        p256dh,
        auth,
    } = target.clone()
    else {
        unreachable!()
    };

    // Nobody listens: retried later.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let nobody = Target::WebPush {
        endpoint: format!("http://{closed}/push/1"),
        p256dh: p256dh.clone(),
        auth: auth.clone(),
    };
    match sender.send(&nobody, &p, &opts(chat, Urgency::Normal)).await {
        Outcome::Retry {
            after: None,
            reason,
        } => assert!(reason.contains("connect"), "{reason}"),
        other => panic!("closed port: {other:?}"),
    }
    // A malformed subscription fails before any request.
    for bad in [
        Target::WebPush {
            endpoint: endpoint.clone(),
            p256dh: "AAAA".into(),
            auth: auth.clone(),
        },
        Target::WebPush {
            endpoint: endpoint.clone(),
            p256dh: p256dh.clone(),
            auth: "AAAA".into(),
        },
        Target::WebPush {
            endpoint: "not a url".into(),
            p256dh: p256dh.clone(),
            auth: auth.clone(),
        },
    ] {
        assert!(matches!(
            sender.send(&bad, &p, &opts(chat, Urgency::Normal)).await,
            Outcome::Failed { .. }
        ));
    }
    // Without PUSH_ALLOW_HTTP_ENDPOINTS an http:// endpoint is refused.
    let (strict, _) = vapid_config(false);
    let strict = Sender::new(&strict.push).unwrap();
    match strict.send(&target, &p, &opts(chat, Urgency::Normal)).await {
        Outcome::Failed { reason } => assert!(reason.contains("http://"), "{reason}"),
        other => panic!("http:// endpoint: {other:?}"),
    }
    // FCM is not configured here.
    let fcm = Target::Fcm { token: "t".into() };
    assert!(matches!(
        sender.send(&fcm, &p, &opts(chat, Urgency::Normal)).await,
        Outcome::Failed { .. }
    ));
    assert!(service.seen.lock().unwrap().is_empty());
}

// ---- FCM -----------------------------------------------------------------------------

/// An OAuth2 token endpoint and an FCM send endpoint.
struct FcmService {
    token_uri: Mutex<String>,
    /// Access tokens issued, in order; sends must carry the last one.
    issued: Mutex<Vec<String>>,
    replies: Mutex<VecDeque<Reply>>,
    /// Each send's bearer token and body.
    sends: Mutex<Vec<(String, Value)>>,
}

async fn fcm_token(
    State(s): State<Arc<FcmService>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let check = || -> Result<(), String> {
        if form.get("grant_type").map(String::as_str)
            != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
        {
            return Err("grant_type".into());
        }
        let assertion = form.get("assertion").ok_or("no assertion")?;
        let key = DecodingKey::from_rsa_pem(RSA_PUB.as_bytes()).map_err(|e| e.to_string())?;
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&[s.token_uri.lock().unwrap().as_str()]);
        v.set_issuer(&[CLIENT_EMAIL]);
        v.set_required_spec_claims(&["exp", "aud", "iss", "iat"]);
        let c = jsonwebtoken::decode::<Value>(assertion, &key, &v)
            .map_err(|e| format!("assertion: {e}"))?
            .claims;
        if c["scope"] != "https://www.googleapis.com/auth/firebase.messaging" {
            return Err("scope".into());
        }
        if c["exp"].as_i64() != c["iat"].as_i64().map(|i| i + 3600) {
            return Err("exp is not iat + 3600".into());
        }
        Ok(())
    };
    match check() {
        Err(reason) => (
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_grant", "error_description": reason}).to_string(),
        )
            .into_response(),
        Ok(()) => {
            let mut issued = s.issued.lock().unwrap();
            let token = format!("ya29.test-{}", issued.len() + 1);
            issued.push(token.clone());
            axum::Json(json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}))
                .into_response()
        }
    }
}

async fn fcm_send(State(s): State<Arc<FcmService>>, headers: HeaderMap, body: Bytes) -> Response {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_string();
    if s.issued.lock().unwrap().last() != Some(&bearer) {
        return (
            StatusCode::UNAUTHORIZED,
            "bearer is not the last token issued",
        )
            .into_response();
    }
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    s.sends.lock().unwrap().push((bearer, message));
    let reply = s.replies.lock().unwrap().pop_front();
    reply
        .unwrap_or(Reply(
            200,
            None,
            json!({"name": "projects/p/messages/1"}).to_string(),
        ))
        .into_response()
}

async fn fcm_service(replies: Vec<Reply>) -> (Arc<FcmService>, SocketAddr) {
    let service = Arc::new(FcmService {
        token_uri: Mutex::new(String::new()),
        issued: Mutex::new(Vec::new()),
        replies: Mutex::new(replies.into()),
        sends: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/oauth2/token", post(fcm_token))
        .route(
            &format!("/v1/projects/{PROJECT}/messages:send"),
            post(fcm_send),
        )
        .with_state(service.clone());
    let addr = serve(app).await;
    *service.token_uri.lock().unwrap() = format!("http://{addr}/oauth2/token");
    (service, addr)
}

/// A service-account file for the receiver at `addr`, removed when dropped.
struct AccountFile(std::path::PathBuf);

impl AccountFile {
    fn new(addr: SocketAddr, client_email: &str) -> Self {
        let path = std::env::temp_dir().join(format!("courier-sa-{}.json", Uuid::new_v4()));
        let json = json!({
            "type": "service_account",
            "project_id": PROJECT,
            "private_key": RSA_KEY,
            "client_email": client_email,
            "token_uri": format!("http://{addr}/oauth2/token"),
        });
        std::fs::write(&path, json.to_string()).unwrap();
        Self(path)
    }
}

impl Drop for AccountFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn fcm_sender(addr: SocketAddr, file: &AccountFile) -> Sender {
    let cfg = config(&[
        ("FCM_PROJECT_ID", PROJECT.into()),
        ("FCM_SERVICE_ACCOUNT_FILE", file.0.display().to_string()),
        ("FCM_ENDPOINT", format!("http://{addr}")),
    ]);
    Sender::new(&cfg.push).unwrap()
}

#[tokio::test]
async fn fcm_uses_a_cached_oauth_token_and_classifies_answers() {
    let unregistered = json!({"error": {"code": 404, "status": "NOT_FOUND", "details": [
        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}
    ]}});
    let unregistered_400 = json!({"error": {"code": 400, "status": "INVALID_ARGUMENT", "details": [
        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}
    ]}});
    let invalid = json!({"error": {"code": 400, "status": "INVALID_ARGUMENT", "details": [
        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "INVALID_ARGUMENT"}
    ]}});
    let retry_at = (Utc::now() + chrono::Duration::seconds(30))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let (service, addr) = fcm_service(vec![
        Reply::status(200),
        Reply::status(200),
        Reply::status(401),
        Reply::status(200),
        Reply(404, None, unregistered.to_string()),
        Reply(400, None, unregistered_400.to_string()),
        Reply(429, Some(retry_at), String::new()),
        Reply::status(500),
        Reply(400, None, invalid.to_string()),
    ])
    .await;
    let file = AccountFile::new(addr, CLIENT_EMAIL);
    let sender = fcm_sender(addr, &file);
    assert!(sender.fcm_enabled() && !sender.webpush_enabled());
    let chat = Uuid::now_v7();
    let p = payload(chat);
    let target = Target::Fcm {
        token: "device-token-1".into(),
    };
    let high = opts(chat, Urgency::High);
    let send = || sender.send(&target, &p, &high);

    assert_eq!(send().await, Outcome::Sent);
    assert_eq!(send().await, Outcome::Sent);
    assert_eq!(
        service.issued.lock().unwrap().len(),
        1,
        "the access token is cached"
    );
    {
        let sends = service.sends.lock().unwrap();
        let m = &sends[0].1["message"];
        assert_eq!(m["token"], "device-token-1");
        assert_eq!(m["notification"], json!({"title": p.title, "body": p.body}));
        assert_eq!(
            m["data"],
            json!({
                "chatId": chat.to_string(), "messageId": p.message_id.to_string(),
                "title": p.title, "body": p.body, "unread": "20",
                "sentAt": "2026-01-02T03:04:05.678Z",
            })
        );
        assert_eq!(m["android"]["collapse_key"], chat.to_string());
        assert_eq!(m["android"]["notification"]["tag"], chat.to_string());
        assert_eq!(m["android"]["priority"], "high");
        assert_eq!(m["android"]["ttl"], "60s");
        assert_eq!(m["apns"]["headers"]["apns-collapse-id"], chat.to_string());
        assert_eq!(m["apns"]["headers"]["apns-priority"], "10");
        assert_eq!(m["apns"]["payload"]["aps"]["badge"], 20);
        assert_eq!(m["apns"]["payload"]["aps"]["thread-id"], chat.to_string());
    }
    // 401: the token is dropped, the send retried later with a new one.
    match send().await {
        Outcome::Retry {
            after: None,
            reason,
        } => assert!(reason.contains("401"), "{reason}"),
        other => panic!("401: {other:?}"),
    }
    // From now on the receiver refuses the old token (the last issued is another one).
    service.issued.lock().unwrap().push("ya29.revoked".into());
    assert_eq!(send().await, Outcome::Sent);
    {
        let issued = service.issued.lock().unwrap();
        assert_eq!(issued.len(), 3, "a new token after the 401");
        assert_eq!(service.sends.lock().unwrap()[3].0, issued[2]);
    }
    assert_eq!(send().await, Outcome::Gone, "404 UNREGISTERED");
    assert_eq!(
        send().await,
        Outcome::Gone,
        "UNREGISTERED under another status"
    );
    match send().await {
        Outcome::Retry {
            after: Some(d),
            reason,
        } => {
            assert!(
                d > Duration::from_secs(25) && d <= Duration::from_secs(30),
                "{d:?}"
            );
            assert!(reason.contains("429"), "{reason}");
        }
        other => panic!("429: {other:?}"),
    }
    assert!(
        matches!(send().await, Outcome::Retry { after: None, .. }),
        "500"
    );
    match send().await {
        Outcome::Failed { reason } => assert!(reason.contains("INVALID_ARGUMENT"), "{reason}"),
        other => panic!("400: {other:?}"),
    }
    assert_eq!(service.issued.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn an_assertion_the_token_endpoint_refuses_fails_the_send() {
    let (service, addr) = fcm_service(vec![]).await;
    let file = AccountFile::new(addr, "someone-else@courier-test.iam.gserviceaccount.com");
    let sender = fcm_sender(addr, &file);
    let chat = Uuid::now_v7();
    let target = Target::Fcm {
        token: "device-token-1".into(),
    };
    match sender
        .send(&target, &payload(chat), &opts(chat, Urgency::Normal))
        .await
    {
        Outcome::Failed { reason } => {
            assert!(
                reason.contains("FCM token") && reason.contains("invalid_grant"),
                "{reason}"
            )
        }
        other => panic!("refused assertion: {other:?}"),
    }
    assert!(service.issued.lock().unwrap().is_empty());
    assert!(service.sends.lock().unwrap().is_empty());
}
