//! The profile's accounts: `POST /auth/register`, `POST /auth/login`, `GET /auth/me`,
//! `POST /auth/logout`, `GET /users` (paged), `GET /users/:id`.

use axum::{Json, extract::State, response::Response};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{PageQuery, envelope::paged};
use crate::{
    api::{
        AppState,
        extract::{ApiJson, ApiPath, ApiQuery, AuthCaller, AuthUser, ClientInfo},
    },
    domain::compat::{PageMeta, iso},
    error::{ApiError, ApiResult},
    service::{
        accounts::{self, Account},
        devices, pages, sessions,
    },
};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterBody {
    email: String,
    password: String,
    first_name: Option<String>,
    last_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    email: String,
    password: String,
}

/// A user in the reference shape: `{id, createdAt, updatedAt, role, email}`.
pub fn user(a: &Account) -> Value {
    json!({
        "id": a.id,
        "createdAt": iso(&a.created_at),
        "updatedAt": iso(&a.updated_at),
        "role": a.role,
        "email": a.email,
    })
}

pub async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RegisterBody>,
) -> ApiResult<Json<Value>> {
    let names = [body.first_name.as_deref(), body.last_name.as_deref()];
    let account = accounts::register(&state.ctx, &body.email, body.password, names).await?;
    Ok(Json(user(&account)))
}

pub async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<Json<Value>> {
    let account = accounts::login(&state.ctx, &body.email, body.password).await?;
    // A session like any login (device from the User-Agent); the profile has no refresh.
    let sid = sessions::start(&state.ctx, account.id, &client.device(None)).await?;
    let access = sessions::access_token(&state.ctx, account.id, Some(sid))?;
    Ok(Json(json!({
        "user": user(&account),
        "accessToken": {"expiresIn": access.expires_in.as_secs(), "token": access.token},
    })))
}

pub async fn me(State(state): State<AppState>, AuthUser(me): AuthUser) -> ApiResult<Json<Value>> {
    let account = accounts::find(&state.ctx, me)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    Ok(Json(user(&account)))
}

/// Revokes the caller's session, as Courier's own `POST /auth/logout` does (its
/// tokens get 401 `session_revoked`, its sockets `auth.revoked`); answers in the
/// reference backend's shape, `{success: true}`.
pub async fn logout(
    State(state): State<AppState>,
    AuthCaller(caller): AuthCaller,
) -> ApiResult<Json<Value>> {
    devices::logout(&state.ctx, caller).await?;
    Ok(Json(json!({"success": true})))
}

pub async fn list_users(
    State(state): State<AppState>,
    _caller: AuthUser,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Response> {
    let opts = q.options()?;
    let (rows, total) = pages::users(&state.ctx, opts).await?;
    let data: Vec<Value> = rows.iter().map(user).collect();
    Ok(paged(data, PageMeta::new(opts.page, opts.take, total)))
}

pub async fn get_user(
    State(state): State<AppState>,
    _caller: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Value>> {
    let account = accounts::find(&state.ctx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("error.userNotFound"))?;
    Ok(Json(user(&account)))
}
