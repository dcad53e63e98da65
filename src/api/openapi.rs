//! The OpenAPI 3.1 description of the REST API, generated from the handlers'
//! `#[utoipa::path]` annotations and served at `GET /openapi.json`.

use std::sync::LazyLock;

use axum::Json;
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use super::{
    account, admin, auth, blocks, chat_list, chats, hooks, lifecycle, manage, messages,
    notifications, profiles, push, search, sessions, uploads, users,
};

/// Name of the security scheme the handlers refer to with `security(("bearer" = []))`.
pub const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Courier",
        description = "REST API of Courier, a queue-backed realtime chat backend. Every 4xx/5xx \
                       body is an `ErrorBody`. Realtime delivery is over Socket.IO (namespace \
                       `/chat`) and SSE (`/events`); the payloads of the lifecycle and chat \
                       events are the `*Event` schemas (each also carries `offset`)."
    ),
    paths(
        auth::register,
        auth::login,
        auth::refresh,
        sessions::list,
        sessions::revoke,
        sessions::logout,
        sessions::logout_all,
        sessions::password,
        users::me,
        account::delete_me,
        profiles::update,
        profiles::search,
        users::get_user,
        users::presence,
        users::presence_bulk,
        blocks::block,
        blocks::unblock,
        blocks::list,
        chats::create,
        chat_list::list,
        chat_list::update_settings,
        chats::get_chat,
        chats::add_participants,
        chats::remove_participant,
        messages::send,
        messages::history,
        messages::mark_read,
        manage::update,
        manage::set_role,
        lifecycle::edit,
        lifecycle::delete,
        lifecycle::replies,
        lifecycle::add_reaction,
        lifecycle::remove_reaction,
        lifecycle::pin,
        lifecycle::unpin,
        lifecycle::pins,
        uploads::create,
        search::messages,
        notifications::list,
        notifications::mark_read,
        hooks::create,
        hooks::list,
        hooks::delete,
        hooks::post,
        admin::create_report,
        admin::list_reports,
        admin::resolve_report,
        admin::ban,
        admin::unban,
        admin::delete_message,
        push::vapid_public_key,
        push::create,
        push::list,
        push::delete,
    ),
    components(schemas(
        crate::domain::events::MessageEvent,
        crate::domain::lifecycle::Deleted,
        crate::domain::lifecycle::ReactionUpdated,
        crate::domain::lifecycle::PinsUpdated,
        crate::domain::lifecycle::ChatUpdated,
        crate::domain::lifecycle::ChatRemoved,
        crate::domain::attachment::Attachment,
        crate::domain::mention::NotificationEvent,
        crate::service::chat_list::SettingsEvent,
        crate::service::profiles::UserUpdated,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Registration, sign-in, token refresh, sessions and password"),
        (name = "users", description = "User profiles, user search and presence"),
        (name = "chats", description = "Chats and their participants"),
        (name = "messages", description = "Sending, history and read marks"),
        (name = "lifecycle", description = "Edits, deletes, replies, reactions and pins, applied in chat order"),
        (name = "attachments", description = "Uploads to S3-compatible storage through presigned URLs"),
        (name = "search", description = "Full-text search over the caller's chats"),
        (name = "notifications", description = "Mentions of the caller, stored and marked read"),
        (name = "hooks", description = "Incoming webhooks: a chat's bots post through a secret URL"),
        (name = "moderation", description = "Reports by users; bans, report resolution and moderator deletes by admins (the global role `admin`)"),
        (name = "push", description = "Push notifications: the devices (Web Push subscriptions, FCM tokens) that get them while the user is offline"),
    )
)]
pub struct ApiDoc;

/// Adds the bearer JWT scheme (`Authorization: Bearer <accessToken>`).
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "The `accessToken` of /auth/register, /auth/login or /auth/refresh",
                    ))
                    .build(),
            ),
        );
    }
}

static DOC: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);

/// `GET /openapi.json`.
pub async fn serve() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(&DOC)
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;
    use serde_json::Value;

    use super::*;
    use crate::error::ApiError;

    /// Every route of the wire contract, as (method, OpenAPI path).
    const CONTRACT: &[(&str, &str)] = &[
        ("post", "/auth/register"),
        ("post", "/auth/login"),
        ("post", "/auth/refresh"),
        ("get", "/auth/sessions"),
        ("delete", "/auth/sessions/{sessionId}"),
        ("post", "/auth/logout"),
        ("post", "/auth/logout-all"),
        ("post", "/auth/password"),
        ("get", "/users/me"),
        ("patch", "/users/me"),
        ("delete", "/users/me"),
        ("get", "/users/search"),
        ("get", "/users/{userId}"),
        ("get", "/users/{userId}/presence"),
        ("post", "/users/presence"),
        ("post", "/chats"),
        ("get", "/chats"),
        ("get", "/chats/{chatId}"),
        ("post", "/chats/{chatId}/participants"),
        ("delete", "/chats/{chatId}/participants/{userId}"),
        ("post", "/chats/{chatId}/messages"),
        ("get", "/chats/{chatId}/messages"),
        ("post", "/chats/{chatId}/read"),
        ("patch", "/chats/{chatId}"),
        ("patch", "/chats/{chatId}/participants/{userId}"),
        ("patch", "/chats/{chatId}/messages/{messageId}"),
        ("delete", "/chats/{chatId}/messages/{messageId}"),
        ("get", "/chats/{chatId}/messages/{messageId}/replies"),
        (
            "put",
            "/chats/{chatId}/messages/{messageId}/reactions/{emoji}",
        ),
        (
            "delete",
            "/chats/{chatId}/messages/{messageId}/reactions/{emoji}",
        ),
        ("put", "/chats/{chatId}/pins/{messageId}"),
        ("delete", "/chats/{chatId}/pins/{messageId}"),
        ("get", "/chats/{chatId}/pins"),
        ("post", "/uploads"),
        ("get", "/search/messages"),
        ("get", "/notifications"),
        ("post", "/notifications/read"),
        ("post", "/chats/{chatId}/hooks"),
        ("get", "/chats/{chatId}/hooks"),
        ("delete", "/chats/{chatId}/hooks/{hookId}"),
        ("post", "/hooks/{hookId}/{token}"),
        ("put", "/users/{userId}/block"),
        ("delete", "/users/{userId}/block"),
        ("get", "/users/me/blocks"),
        ("put", "/chats/{chatId}/settings"),
        ("post", "/reports"),
        ("get", "/admin/reports"),
        ("post", "/admin/reports/{reportId}/resolve"),
        ("post", "/admin/users/{userId}/ban"),
        ("delete", "/admin/users/{userId}/ban"),
        ("delete", "/admin/messages/{messageId}"),
        ("get", "/push/vapid-public-key"),
        ("post", "/push/subscriptions"),
        ("get", "/push/subscriptions"),
        ("delete", "/push/subscriptions/{subscriptionId}"),
    ];
    const METHODS: &[&str] = &[
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];

    fn doc() -> Value {
        let json = ApiDoc::openapi().to_pretty_json().expect("serializes");
        serde_json::from_str(&json).expect("is JSON")
    }

    #[test]
    fn describes_exactly_the_contract_routes() {
        let doc = doc();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let paths = doc["paths"].as_object().expect("paths");
        for (method, path) in CONTRACT {
            let op = &paths
                .get(*path)
                .unwrap_or_else(|| panic!("missing path {path}"))[*method];
            assert!(op.is_object(), "missing {method} {path}");
        }
        let mut described: Vec<(String, String)> = paths
            .iter()
            .flat_map(|(path, item)| {
                METHODS
                    .iter()
                    .filter(|m| item.get(**m).is_some())
                    .map(|m| (m.to_string(), path.clone()))
            })
            .collect();
        described.sort();
        let mut expected: Vec<(String, String)> = CONTRACT
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        expected.sort();
        assert_eq!(described, expected, "no operation beyond the contract");
        let mut ids: Vec<&str> = CONTRACT
            .iter()
            .map(|(m, p)| doc["paths"][*p][*m]["operationId"].as_str().unwrap())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), CONTRACT.len(), "operationIds are unique");
    }

    #[test]
    fn path_parameters_are_uuids_and_auth_is_bearer() {
        let doc = doc();
        let scheme = &doc["components"]["securitySchemes"][BEARER];
        assert_eq!(scheme["type"], "http");
        assert_eq!(scheme["scheme"], "bearer");
        assert_eq!(scheme["bearerFormat"], "JWT");
        for (method, path) in CONTRACT {
            let op = &doc["paths"][*path][*method];
            let security = op["security"].as_array();
            let anonymous = ["/auth/register", "/auth/login", "/auth/refresh"];
            if anonymous.contains(path) || path.starts_with("/hooks/") {
                assert!(security.is_none(), "{method} {path} needs no token");
            } else {
                assert_eq!(
                    security.map(|s| s[0].get(BEARER).is_some()),
                    Some(true),
                    "{method} {path} needs the bearer token"
                );
            }
            let in_path: Vec<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            for name in in_path {
                let param = op["parameters"]
                    .as_array()
                    .and_then(|ps| ps.iter().find(|p| p["name"] == name && p["in"] == "path"))
                    .unwrap_or_else(|| panic!("{method} {path}: no path parameter {name}"));
                assert_eq!(param["required"], true);
                if name != "emoji" && name != "token" {
                    assert_eq!(param["schema"]["format"], "uuid", "{name}");
                }
            }
            let responses = op["responses"].as_object().unwrap();
            for status in ["500", "503"] {
                assert!(responses.contains_key(status), "{method} {path}: {status}");
            }
            for (status, resp) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        resp["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
        }
        let send = &doc["paths"]["/chats/{chatId}/messages"]["post"]["responses"];
        assert!(send["202"].is_object(), "a send answers 202");
    }

    #[test]
    fn schemas_carry_the_contract_limits() {
        let doc = doc();
        let s = &doc["components"]["schemas"];
        let send = &s["SendMessageBody"]["properties"];
        assert_eq!(send["content"]["minLength"], 1);
        assert_eq!(send["content"]["maxLength"], 4000);
        assert_eq!(send["clientMessageId"]["format"], "uuid");
        assert_eq!(
            s["RegisterBody"]["properties"]["username"]["pattern"],
            "^[a-z0-9_.-]{3,32}$"
        );
        assert_eq!(s["Message"]["properties"]["sentAt"]["format"], "date-time");
        assert_eq!(s["Chat"]["properties"]["createdAt"]["format"], "date-time");
        assert_eq!(s["User"]["properties"]["id"]["format"], "uuid");
        let limit = doc["paths"]["/chats/{chatId}/messages"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "limit")
            .unwrap()
            .clone();
        assert_eq!(limit["in"], "query");
        assert_eq!(limit["schema"]["minimum"], 1);
        assert_eq!(limit["schema"]["maximum"], 100);
    }

    #[test]
    fn event_payloads_are_described() {
        let doc = doc();
        let s = &doc["components"]["schemas"];
        for (name, fields) in [
            ("ChatMessageEvent", &["chatId", "message"][..]),
            (
                "ChatMessageDeletedEvent",
                &["chatId", "messageId", "sequence"],
            ),
            (
                "ChatReactionUpdatedEvent",
                &["chatId", "messageId", "emoji", "userId", "added", "count"],
            ),
            (
                "ChatPinsUpdatedEvent",
                &["chatId", "messageId", "pinned", "userId"],
            ),
            ("ChatUpdatedEvent", &["chat"]),
            ("ChatRemovedEvent", &["chatId"]),
        ] {
            for f in fields {
                assert!(s[name]["properties"][f].is_object(), "{name}.{f}");
            }
        }
        for f in [
            "editedAt",
            "deletedAt",
            "replyTo",
            "forwardedFrom",
            "reactions",
        ] {
            assert!(s["Message"]["properties"][f].is_object(), "Message.{f}");
        }
    }

    #[tokio::test]
    async fn error_schema_matches_the_error_body() {
        let doc = doc();
        let schema = &doc["components"]["schemas"]["ErrorBody"];
        let mut documented: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        documented.sort();
        let mut required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        required.sort();
        let resp = ApiError::not_found("x").into_response();
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        let mut actual: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        actual.sort();
        assert_eq!(documented, actual);
        assert_eq!(required, actual);
    }

    #[tokio::test]
    async fn served_document_is_the_generated_one() {
        let Json(served) = serve().await;
        let served = serde_json::to_value(served).unwrap();
        assert_eq!(served, doc());
    }
}
