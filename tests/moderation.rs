//! Moderation against real services: the admin role (granted and revoked as the
//! command line does), 403 `forbidden` on every admin route for everyone else, and
//! reports (filed, validated, rate-limited, listed, resolved), each admin action in the
//! audit log and on the integration exchange as `admin.<action>`.

mod common;
mod moderation_support;

use common::{TestApp, poll, spawn_app, spawn_with, test_config};
use courier::{
    domain::moderation::{AuditAction, GlobalRole},
    service::moderation::{RoleOutcome, set_role},
};
use moderation_support::{AdminEvents, actions, audit, make_admin};
use serde_json::{Value, json};
use uuid::Uuid;

/// Every admin route, as (method, path, body).
fn admin_routes(user: Uuid) -> Vec<(&'static str, String, Option<Value>)> {
    let any = Uuid::new_v4();
    vec![
        ("GET", "/admin/reports".into(), None),
        ("POST", format!("/admin/reports/{any}/resolve"), None),
        (
            "POST",
            format!("/admin/users/{user}/ban"),
            Some(json!({"reason": "spam"})),
        ),
        ("DELETE", format!("/admin/users/{user}/ban"), None),
        ("DELETE", format!("/admin/messages/{any}"), None),
    ]
}

#[tokio::test]
async fn admin_routes_refuse_everyone_but_admins() {
    let app = spawn_app().await;
    let (plain, target) = (app.register("plain").await, app.register("target").await);
    for (method, path, body) in admin_routes(target.id) {
        let (s, b) = app
            .call(method, &path, Some(&plain.token), body.clone())
            .await;
        assert_eq!(
            (s, b["code"].as_str()),
            (403, Some("forbidden")),
            "{method} {path}"
        );
        let (s, _) = app.call(method, &path, None, body).await;
        assert_eq!(s, 401, "{method} {path} without a token");
    }
    assert!(audit(&app, target.id).await.is_empty(), "nothing was done");
    let (s, b) = app
        .call(
            "POST",
            "/auth/login",
            None,
            Some(json!({"username": target.username, "password": common::PASSWORD})),
        )
        .await;
    assert_eq!(s, 200, "not banned: {b}");
}

#[tokio::test]
async fn the_role_is_granted_and_revoked_at_once_and_audited() {
    let app = spawn_app().await;
    let mut events = AdminEvents::subscribe(&app).await;
    let u = app.register("mod").await;
    let list = |t: String| {
        let app = &app;
        async move { app.call("GET", "/admin/reports", Some(&t), None).await.0 }
    };
    assert_eq!(list(u.token.clone()).await, 403);
    make_admin(&app, &u).await;
    assert_eq!(list(u.token.clone()).await, 200, "the same token, at once");
    let again = set_role(&app.pool, &u.username, GlobalRole::Admin)
        .await
        .unwrap();
    assert_eq!(again, RoleOutcome::Unchanged(u.id));
    let revoked = set_role(&app.pool, &u.username, GlobalRole::User)
        .await
        .unwrap();
    assert_eq!(revoked, RoleOutcome::Changed(u.id));
    assert_eq!(list(u.token.clone()).await, 403);
    let unknown = set_role(&app.pool, "nobody_here", GlobalRole::Admin).await;
    assert_eq!(unknown.unwrap_err().code(), "not_found");

    let entries = audit(&app, u.id).await;
    let kinds: Vec<_> = entries.iter().map(|e| e.action).collect();
    assert_eq!(
        kinds,
        [AuditAction::GrantAdmin, AuditAction::RevokeAdmin],
        "no entry for no change"
    );
    assert!(
        entries.iter().all(|e| e.actor_id.is_none()),
        "the command line acts"
    );
    assert_eq!(entries[0].details["username"], u.username);
    // The command line has no broker: the API's relay publishes its entries.
    let grant = events.until(AuditAction::GrantAdmin, u.id).await;
    assert_eq!(grant["data"]["actorId"], Value::Null);
    assert_eq!(grant["data"]["action"], "grant_admin");
    assert_eq!(grant["data"]["targetType"], "user");
    assert_eq!(grant["id"], format!("audit:{}", entries[0].id));
    events.until(AuditAction::RevokeAdmin, u.id).await;
    poll::until("entries marked published", || async {
        let left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM audit_log WHERE target_id = $1 AND published_at IS NULL",
        )
        .bind(u.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        (left == 0).then_some(())
    })
    .await;
}

async fn report(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    app.call("POST", "/reports", Some(token), Some(body)).await
}

#[tokio::test]
async fn reports_are_filed_listed_and_resolved() {
    let app = spawn_app().await;
    let mut events = AdminEvents::subscribe(&app).await;
    let (a, b, outsider, admin) = (
        app.register("a").await,
        app.register("b").await,
        app.register("out").await,
        app.register("admin").await,
    );
    let chat = app.group_chat(&a, &[&b]).await;
    let (s, _) = app
        .send(&b, chat, "buy cheap watches", Uuid::new_v4())
        .await;
    assert_eq!(s, 202);
    app.wait_messages(chat, 1).await;
    let message: Uuid = sqlx::query_scalar("SELECT id FROM messages WHERE chat_id = $1")
        .bind(chat)
        .fetch_one(&app.pool)
        .await
        .unwrap();

    for (body, status, code) in [
        (
            json!({"messageId": message, "userId": b.id, "reason": "x"}),
            400,
            "validation_failed",
        ),
        (json!({"reason": "x"}), 400, "validation_failed"),
        (
            json!({"messageId": message, "reason": "  "}),
            400,
            "validation_failed",
        ),
        (
            json!({"messageId": message, "reason": "x".repeat(1001)}),
            400,
            "validation_failed",
        ),
        (
            json!({"userId": a.id, "reason": "me"}),
            400,
            "validation_failed",
        ),
        (
            json!({"messageId": Uuid::new_v4(), "reason": "x"}),
            404,
            "not_found",
        ),
        (
            json!({"userId": Uuid::new_v4(), "reason": "x"}),
            404,
            "not_found",
        ),
    ] {
        let (s, r) = report(&app, &a.token, body.clone()).await;
        assert_eq!((s, r["code"].as_str()), (status, Some(code)), "{body}: {r}");
    }
    let (s, r) = report(
        &app,
        &outsider.token,
        json!({"messageId": message, "reason": "x"}),
    )
    .await;
    assert_eq!(
        (s, r["code"].as_str()),
        (403, Some("forbidden")),
        "not in the chat: {r}"
    );

    let (s, filed) = report(
        &app,
        &a.token,
        json!({"messageId": message, "reason": " spam "}),
    )
    .await;
    assert_eq!(s, 201, "{filed}");
    assert_eq!(filed["status"], "open");
    assert!(filed["createdAt"].as_str().unwrap().ends_with('Z'));
    let id = filed["id"].as_str().unwrap().to_string();
    let (s, user_report) = report(&app, &a.token, json!({"userId": b.id, "reason": "rude"})).await;
    assert_eq!(s, 201, "{user_report}");

    make_admin(&app, &admin).await;
    let (s, list) = app
        .call(
            "GET",
            "/admin/reports?status=open",
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(s, 200, "{list}");
    let reports = list["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0]["id"], user_report["id"], "newest first");
    let r = &reports[1];
    assert_eq!(r["id"], id.as_str());
    assert_eq!(r["reason"], "spam");
    assert_eq!(r["reporterId"], json!(a.id));
    assert_eq!(r["messageId"], json!(message));
    assert_eq!(r["chatId"], json!(chat));
    assert_eq!(r["userId"], json!(b.id), "the sender");
    assert_eq!(r["messageContent"], "buy cheap watches");
    for key in ["resolvedAt", "resolvedBy", "resolutionNote"] {
        assert_eq!(r[key], Value::Null, "{key}");
    }
    assert_eq!(reports[0]["messageId"], Value::Null);
    let (s, page) = app
        .call(
            "GET",
            &format!(
                "/admin/reports?limit=1&before={}",
                user_report["id"].as_str().unwrap()
            ),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(
        (s, page["reports"][0]["id"].as_str()),
        (200, Some(id.as_str()))
    );
    for bad in ["status=closed", "limit=0", "limit=501"] {
        let (s, _) = app
            .call(
                "GET",
                &format!("/admin/reports?{bad}"),
                Some(&admin.token),
                None,
            )
            .await;
        assert_eq!(s, 400, "{bad}");
    }

    let resolve = format!("/admin/reports/{id}/resolve");
    let (s, body) = app
        .call(
            "POST",
            &resolve,
            Some(&admin.token),
            Some(json!({"note": "x".repeat(1001)})),
        )
        .await;
    assert_eq!((s, body["code"].as_str()), (400, Some("validation_failed")));
    let (s, done) = app
        .call(
            "POST",
            &resolve,
            Some(&admin.token),
            Some(json!({"note": "warned"})),
        )
        .await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(done["status"], "resolved");
    assert_eq!(done["resolvedBy"], json!(admin.id));
    assert_eq!(done["resolutionNote"], "warned");
    assert!(done["resolvedAt"].is_string());
    let (s, again) = app.call("POST", &resolve, Some(&admin.token), None).await;
    assert_eq!((s, again["code"].as_str()), (409, Some("conflict")));
    let other = format!(
        "/admin/reports/{}/resolve",
        user_report["id"].as_str().unwrap()
    );
    let (s, _) = app.call("POST", &other, Some(&admin.token), None).await;
    assert_eq!(s, 200, "without a body");
    let (s, _) = app
        .call(
            "POST",
            &format!("/admin/reports/{}/resolve", Uuid::new_v4()),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (_, open) = app
        .call(
            "GET",
            "/admin/reports?status=open",
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(open["reports"].as_array().unwrap().len(), 0);
    let (_, resolved) = app
        .call(
            "GET",
            "/admin/reports?status=resolved",
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(resolved["reports"].as_array().unwrap().len(), 2);

    let report_id: Uuid = id.parse().unwrap();
    let entries = audit(&app, report_id).await;
    assert_eq!(entries.len(), 1, "one resolution");
    assert_eq!(entries[0].action, AuditAction::ResolveReport);
    assert_eq!(entries[0].actor_id, Some(admin.id));
    assert_eq!(entries[0].details["note"], "warned");
    let event = events.until(AuditAction::ResolveReport, report_id).await;
    assert_eq!(event["type"], "admin.resolve_report");
    assert_eq!(event["data"]["actorId"], json!(admin.id));
    assert_eq!(event["data"]["details"]["note"], "warned");
    assert_eq!(
        actions(&app, a.id).await,
        [],
        "reporting is not an admin action"
    );
}

#[tokio::test]
async fn reports_are_rate_limited_per_user() {
    let config = test_config(&[
        ("RATE_LIMIT_REPORT_MAX", "2"),
        ("RATE_LIMIT_REPORT_WINDOW_SECS", "3600"),
    ]);
    let app = spawn_with(common::Mode::AllInOne, config).await;
    let (a, b, c) = (
        app.register("a").await,
        app.register("b").await,
        app.register("c").await,
    );
    for _ in 0..2 {
        let (s, _) = report(&app, &a.token, json!({"userId": b.id, "reason": "x"})).await;
        assert_eq!(s, 201);
    }
    let (s, body) = report(&app, &a.token, json!({"userId": b.id, "reason": "x"})).await;
    assert_eq!((s, body["code"].as_str()), (429, Some("rate_limited")));
    let (s, _) = report(&app, &c.token, json!({"userId": b.id, "reason": "x"})).await;
    assert_eq!(s, 201, "per user");
}
