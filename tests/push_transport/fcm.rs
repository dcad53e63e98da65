//! FCM HTTP v1: a token endpoint that checks the RS256 assertion with the service
//! account's public key, and a send endpoint that checks the bearer token.

use super::*;

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
