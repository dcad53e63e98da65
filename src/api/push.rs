//! Push notifications' device registry: `GET /push/vapid-public-key`,
//! `POST /push/subscriptions`, `GET /push/subscriptions`,
//! `DELETE /push/subscriptions/:id`.

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    AppState,
    extract::{ApiJson, ApiPath, AuthCaller},
    responses::{BadRequest, BodyErrors, RateLimited, ServerErrors, Unauthorized},
};
use crate::{
    error::{ApiResult, ErrorBody},
    service::push_subscriptions::{self as uc, Kind, SubscriptionInfo},
};

/// The application server key of Web Push.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VapidPublicKey {
    /// base64url (no padding) of the uncompressed P-256 point: the `applicationServerKey`
    /// of `PushManager.subscribe`.
    public_key: String,
}

/// A subscription's transport.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = PushSubscriptionType)]
pub enum KindBody {
    Webpush,
    Fcm,
}

impl From<Kind> for KindBody {
    fn from(k: Kind) -> Self {
        match k {
            Kind::WebPush => Self::Webpush,
            Kind::Fcm => Self::Fcm,
        }
    }
}

/// The keys of a Web Push subscription, as the browser gives them.
#[derive(Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the body only: the use case reads it as JSON
pub struct PushKeys {
    /// base64url (padding tolerated) of the 65-byte uncompressed P-256 point.
    p256dh: String,
    /// base64url (padding tolerated) of the 16-byte authentication secret.
    auth: String,
}

/// A browser's `PushSubscription.toJSON()`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // describes the body only: the use case reads it as JSON
pub struct WebPushSubscriptionBody {
    /// Optional; `webpush` when given.
    #[serde(default)]
    #[schema(pattern = "^webpush$")]
    r#type: Option<String>,
    /// Absolute `https:` URL (`http:` only with `PUSH_ALLOW_HTTP_ENDPOINTS=true`).
    #[schema(max_length = 2048)]
    endpoint: String,
    /// Milliseconds since the epoch, or null.
    #[serde(default)]
    expiration_time: Option<f64>,
    keys: PushKeys,
}

/// An FCM registration token.
#[derive(Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the body only: the use case reads it as JSON
pub struct FcmSubscriptionBody {
    #[schema(pattern = "^fcm$")]
    r#type: String,
    /// The app's FCM registration token.
    #[schema(min_length = 1, max_length = 4096, pattern = "^[A-Za-z0-9_:.-]+$")]
    token: String,
}

/// A device to register: a browser's subscription, or an FCM token.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // describes the body only: the use case reads it as JSON
pub enum PushSubscriptionBody {
    WebPush(WebPushSubscriptionBody),
    Fcm(FcmSubscriptionBody),
}

/// A registered subscription.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSubscriptionCreated {
    id: Uuid,
    r#type: KindBody,
    /// When the endpoint (or token) was first registered.
    created_at: DateTime<Utc>,
}

/// One of the caller's subscriptions.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSubscription {
    id: Uuid,
    r#type: KindBody,
    created_at: DateTime<Utc>,
    /// The last registration of the endpoint (or token).
    updated_at: DateTime<Utc>,
    /// Whether it was registered under the caller's session.
    current: bool,
    /// Web Push only: the endpoint URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    endpoint: Option<String>,
    /// FCM only: the registration token.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    token: Option<String>,
}

impl From<SubscriptionInfo> for PushSubscription {
    fn from(s: SubscriptionInfo) -> Self {
        let (endpoint, token) = match s.kind {
            Kind::WebPush => (Some(s.endpoint), None),
            Kind::Fcm => (None, Some(s.endpoint)),
        };
        Self {
            id: s.id,
            r#type: s.kind.into(),
            created_at: s.created_at,
            updated_at: s.updated_at,
            current: s.current,
            endpoint,
            token,
        }
    }
}

/// The VAPID public key browsers subscribe with (`applicationServerKey`).
#[utoipa::path(
    get,
    path = "/push/vapid-public-key",
    operation_id = "getVapidPublicKey",
    tag = "push",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The VAPID public key", body = VapidPublicKey),
        Unauthorized,
        (status = 404, description = "`push_not_configured`: Web Push is not configured on this server", body = ErrorBody),
        ServerErrors,
    )
)]
pub async fn vapid_public_key(
    State(state): State<AppState>,
    AuthCaller(_caller): AuthCaller,
) -> ApiResult<Json<VapidPublicKey>> {
    Ok(Json(VapidPublicKey {
        public_key: uc::vapid_public_key(&state.ctx)?,
    }))
}

/// Registers a device of the caller under the caller's session: 201 for a new endpoint
/// or token, 200 with the existing id when it was registered before (its keys,
/// expiration, session and owner are updated). A user keeps at most 20 subscriptions:
/// one more replaces the least recently registered.
#[utoipa::path(
    post,
    path = "/push/subscriptions",
    operation_id = "createPushSubscription",
    tag = "push",
    security(("bearer" = [])),
    request_body = PushSubscriptionBody,
    responses(
        (status = 201, description = "Registered", body = PushSubscriptionCreated),
        (status = 200, description = "Registered before: updated", body = PushSubscriptionCreated),
        BadRequest,
        Unauthorized,
        BodyErrors,
        (status = 422, description = "`validation_failed`: a malformed subscription (endpoint, keys, token or type)", body = ErrorBody),
        RateLimited,
        ServerErrors,
    )
)]
pub async fn create(
    State(state): State<AppState>,
    AuthCaller(caller): AuthCaller,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<(StatusCode, Json<PushSubscriptionCreated>)> {
    let r = uc::register(&state.ctx, caller, &body).await?;
    let status = if r.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(PushSubscriptionCreated {
            id: r.id,
            r#type: r.kind.into(),
            created_at: r.created_at,
        }),
    ))
}

/// The caller's own subscriptions, newest first.
#[utoipa::path(
    get,
    path = "/push/subscriptions",
    operation_id = "listPushSubscriptions",
    tag = "push",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's subscriptions", body = [PushSubscription]),
        Unauthorized,
        ServerErrors,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    AuthCaller(caller): AuthCaller,
) -> ApiResult<Json<Vec<PushSubscription>>> {
    let subs = uc::list(&state.ctx, caller).await?;
    Ok(Json(subs.into_iter().map(Into::into).collect()))
}

/// Deletes one of the caller's subscriptions.
#[utoipa::path(
    delete,
    path = "/push/subscriptions/{subscriptionId}",
    operation_id = "deletePushSubscription",
    tag = "push",
    security(("bearer" = [])),
    params(("subscriptionId" = Uuid, Path, description = "The subscription's id")),
    responses(
        (status = 204, description = "Deleted"),
        BadRequest,
        Unauthorized,
        (status = 404, description = "`not_found`: no such subscription of the caller", body = ErrorBody),
        ServerErrors,
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    AuthCaller(caller): AuthCaller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    uc::delete(&state.ctx, caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
