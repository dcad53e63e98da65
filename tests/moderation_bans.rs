//! Bans and moderator deletes against real services: a ban revokes every session and
//! refuses logins (both API profiles) and refreshes with 403 `banned` until it ends or
//! is lifted; a moderator's delete tombstones any message with `deletedBy: "moderator"`;
//! each lands in the audit log and on the integration exchange.

mod common;
mod moderation_support;

use common::{Mode, PASSWORD, TestApp, poll, spawn_app, spawn_with, test_config};
use courier::domain::moderation::AuditAction;
use moderation_support::{AdminEvents, actions, audit, make_admin};
use serde_json::{Value, json};
use uuid::Uuid;

async fn login(app: &TestApp, username: &str) -> (u16, Value) {
    let body = json!({"username": username, "password": PASSWORD});
    app.call("POST", "/auth/login", None, Some(body)).await
}

async fn ban(app: &TestApp, token: &str, user: Uuid, body: Value) -> (u16, Value) {
    let path = format!("/admin/users/{user}/ban");
    app.call("POST", &path, Some(token), Some(body)).await
}

#[tokio::test]
async fn a_ban_revokes_every_session_and_refuses_logins_until_lifted() {
    let app = spawn_app().await;
    let mut events = AdminEvents::subscribe(&app).await;
    let (admin, u) = (app.register("admin").await, app.register("banned").await);
    make_admin(&app, &admin).await;
    let (s, second) = login(&app, &u.username).await;
    assert_eq!(s, 200);

    let in_past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    for (user, body, status) in [
        (u.id, json!({"reason": ""}), 400),
        (u.id, json!({"reason": "x".repeat(1001)}), 400),
        (u.id, json!({"reason": "spam", "until": in_past}), 400),
        (u.id, json!({"reason": "spam", "until": "tomorrow"}), 400),
        (admin.id, json!({"reason": "oops"}), 400),
        (Uuid::new_v4(), json!({"reason": "spam"}), 404),
    ] {
        let (s, b) = ban(&app, &admin.token, user, body.clone()).await;
        assert_eq!(s, status, "{body}: {b}");
    }
    assert_eq!(actions(&app, u.id).await, [], "nothing refused is recorded");
    assert_eq!(
        app.call("GET", "/users/me", Some(&u.token), None).await.0,
        200
    );

    let (s, b) = ban(&app, &admin.token, u.id, json!({"reason": "spam"})).await;
    assert_eq!(s, 204, "{b}");
    for token in [&u.token, second["accessToken"].as_str().unwrap()] {
        let (s, b) = app.call("GET", "/users/me", Some(token), None).await;
        // The ban's revocation carries its reason: 403 `banned`, not 401.
        assert_eq!((s, b["code"].as_str()), (403, Some("banned")), "{b}");
    }
    let (s, b) = login(&app, &u.username).await;
    assert_eq!((s, b["code"].as_str()), (403, Some("banned")), "{b}");
    assert_eq!(b["message"], "this account is banned");
    let (s, b) = app
        .call(
            "POST",
            "/auth/refresh",
            None,
            Some(json!({"refreshToken": u.refresh})),
        )
        .await;
    assert_eq!((s, b["code"].as_str()), (403, Some("banned")), "{b}");
    let open: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(u.id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(open, 0, "every session revoked");

    let entry = &audit(&app, u.id).await[0];
    assert_eq!(
        (entry.action, entry.actor_id),
        (AuditAction::BanUser, Some(admin.id))
    );
    assert_eq!(entry.details["reason"], "spam");
    assert_eq!(entry.details["until"], Value::Null);
    let event = events.until(AuditAction::BanUser, u.id).await;
    assert_eq!(event["type"], "admin.ban_user");
    assert_eq!(event["data"]["details"]["reason"], "spam");

    let unban = format!("/admin/users/{}/ban", u.id);
    assert_eq!(
        app.call("DELETE", &unban, Some(&admin.token), None).await.0,
        204
    );
    let (s, b) = login(&app, &u.username).await;
    assert_eq!(s, 200, "lifted: {b}");
    assert_eq!(
        app.call("DELETE", &unban, Some(&admin.token), None).await.0,
        204,
        "idempotent"
    );
    let missing = format!("/admin/users/{}/ban", Uuid::new_v4());
    assert_eq!(
        app.call("DELETE", &missing, Some(&admin.token), None)
            .await
            .0,
        404
    );
    assert_eq!(
        actions(&app, u.id).await,
        [AuditAction::BanUser, AuditAction::UnbanUser]
    );
    events.until(AuditAction::UnbanUser, u.id).await;
}

#[tokio::test]
async fn a_ban_with_an_end_refuses_logins_until_then() {
    let app = spawn_app().await;
    let (admin, u) = (app.register("admin").await, app.register("timed").await);
    make_admin(&app, &admin).await;
    let until = chrono::Utc::now() + chrono::Duration::seconds(2);
    let (s, _) = ban(
        &app,
        &admin.token,
        u.id,
        json!({"reason": "cool down", "until": until.to_rfc3339()}),
    )
    .await;
    assert_eq!(s, 204);
    let (s, b) = login(&app, &u.username).await;
    assert_eq!((s, b["code"].as_str()), (403, Some("banned")));
    let shown = courier::domain::time::format(&until);
    assert_eq!(
        b["message"],
        format!("this account is banned until {shown}")
    );
    // Polled without logging in (logins are rate-limited per username).
    poll::until("the ban to end", || async {
        let pool = &app.pool;
        courier::service::moderation::refuse_banned(pool, u.id)
            .await
            .ok()
    })
    .await;
    assert!(chrono::Utc::now() >= until);
    let (s, b) = login(&app, &u.username).await;
    assert_eq!(s, 200, "over: {b}");
}

#[tokio::test]
async fn a_banned_user_cannot_sign_in_through_the_chat_be_profile() {
    let app = spawn_with(Mode::AllInOne, test_config(&[("API_COMPAT", "chat-be")])).await;
    let creds = json!({"email": format!("{}@example.com", Uuid::new_v4().simple()), "password": "secret-1"});
    let (s, reg) = app
        .call("POST", "/auth/register", None, Some(creds.clone()))
        .await;
    assert_eq!(s, 200, "{reg}");
    let (s, _) = app
        .call("POST", "/auth/login", None, Some(creds.clone()))
        .await;
    assert_eq!(s, 200);
    let user: Uuid = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(creds["email"].as_str().unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let admin = Uuid::new_v4();
    courier::db::moderation::ban(&app.pool, admin, user, "spam", None)
        .await
        .unwrap()
        .unwrap();
    let (s, b) = app.call("POST", "/auth/login", None, Some(creds)).await;
    assert_eq!((s, b["statusCode"].as_u64()), (403, Some(403)), "{b}");
}

#[tokio::test]
async fn a_moderator_deletes_any_message_as_a_moderator() {
    let app = spawn_app().await;
    let mut events = AdminEvents::subscribe(&app).await;
    let (a, b, admin) = (
        app.register("a").await,
        app.register("b").await,
        app.register("mod").await,
    );
    let chat = app.group_chat(&a, &[&b]).await;
    assert_eq!(app.send(&b, chat, "offensive", Uuid::new_v4()).await.0, 202);
    assert_eq!(app.send(&b, chat, "fine", Uuid::new_v4()).await.0, 202);
    app.wait_messages(chat, 2).await;
    let ids: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM messages WHERE chat_id = $1 ORDER BY sequence")
            .bind(chat)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let path = format!("/admin/messages/{}", ids[0]);
    let (s, _) = app.call("DELETE", &path, Some(&a.token), None).await;
    assert_eq!(s, 403, "a group's owner is no moderator");
    make_admin(&app, &admin).await;
    let unknown = format!("/admin/messages/{}", Uuid::new_v4());
    assert_eq!(
        app.call("DELETE", &unknown, Some(&admin.token), None)
            .await
            .0,
        404
    );

    let (s, accepted) = app.call("DELETE", &path, Some(&admin.token), None).await;
    assert_eq!(s, 202, "{accepted}");
    assert!(accepted["brokerMessageId"].is_string());
    let history = poll::until("the tombstone", || async {
        let (_, h) = app
            .call(
                "GET",
                &format!("/chats/{chat}/messages"),
                Some(&a.token),
                None,
            )
            .await;
        let first = h["messages"]
            .as_array()?
            .iter()
            .find(|m| m["id"] == json!(ids[0]))?
            .clone();
        first["deletedAt"].is_string().then_some(h)
    })
    .await;
    let messages = history["messages"].as_array().unwrap();
    let tomb = messages.iter().find(|m| m["id"] == json!(ids[0])).unwrap();
    assert_eq!(tomb["deletedBy"], "moderator");
    assert_eq!(tomb["content"], "");
    let kept = messages.iter().find(|m| m["id"] == json!(ids[1])).unwrap();
    assert!(kept.get("deletedBy").is_none(), "{kept}");
    let (s, gone) = app.call("DELETE", &path, Some(&admin.token), None).await;
    assert_eq!(
        (s, gone["code"].as_str()),
        (404, Some("not_found")),
        "already deleted"
    );

    let entry = &audit(&app, ids[0]).await[0];
    assert_eq!(
        (entry.action, entry.actor_id),
        (AuditAction::DeleteMessage, Some(admin.id))
    );
    assert_eq!(entry.details["chatId"], json!(chat));
    assert_eq!(entry.details["senderId"], json!(b.id));
    let event = events.until(AuditAction::DeleteMessage, ids[0]).await;
    assert_eq!(event["data"]["targetType"], "message");

    // The sender's own delete leaves no moderator mark.
    let own = format!("/chats/{chat}/messages/{}", ids[1]);
    assert_eq!(app.call("DELETE", &own, Some(&b.token), None).await.0, 202);
    poll::until("the sender's tombstone", || async {
        let by: Option<(Option<String>,)> = sqlx::query_as(
            "SELECT deleted_by FROM messages WHERE id = $1 AND deleted_at IS NOT NULL",
        )
        .bind(ids[1])
        .fetch_optional(&app.pool)
        .await
        .unwrap();
        by.map(|(by,)| assert_eq!(by, None))
    })
    .await;
}
