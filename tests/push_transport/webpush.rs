//! Web Push: a receiver that checks the VAPID JWT with the public key and decrypts the
//! body with the subscription's private key, as a push service and a browser would.

use super::*;

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
