//! `PATCH /users/me` (display name, bio, avatar) and `GET /users/search`: thin handlers
//! over `service::profiles` and `service::user_search`.

use axum::{Json, extract::State};
use serde::{Deserialize, Deserializer};
use uuid::Uuid;

use super::{
    AppState,
    extract::{ApiJson, ApiQuery, AuthUser},
    responses::{BadRequest, BodyErrors, RateLimited, ServerErrors, Unauthorized},
};
use crate::{
    domain::user::User,
    error::ApiResult,
    service::{
        profiles::{self, ProfileInput},
        user_search::{self, UserSearchInput, UserSearchPage},
    },
};

/// Absent: unchanged; null: cleared; a value: set.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// The profile fields to change; a field left out stays as it is, null clears it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = UpdateProfileBody)]
pub struct ProfileBody {
    /// At most 64 characters; trimmed, blank or null clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 64)]
    display_name: Option<Option<String>>,
    /// An upload of the caller's (`POST /uploads`, then the presigned PUT) of type
    /// image/png, image/jpeg, image/webp or image/gif, at most 5 MB; null removes the
    /// avatar.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    avatar_upload_id: Option<Option<Uuid>>,
    /// At most 500 characters; trimmed, blank or null clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 500)]
    bio: Option<Option<String>>,
}

/// Changes the caller's profile (all fields at once or none); everyone who shares a
/// chat with the caller, and the caller's own connections, get `user.updated`.
#[utoipa::path(
    patch,
    path = "/users/me",
    operation_id = "updateMe",
    tag = "users",
    security(("bearer" = [])),
    request_body = ProfileBody,
    responses(
        (status = 200, description = "The caller, changed", body = User),
        BadRequest, Unauthorized, BodyErrors, ServerErrors,
    )
)]
pub async fn update(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiJson(body): ApiJson<ProfileBody>,
) -> ApiResult<Json<User>> {
    let input = ProfileInput {
        display_name: body.display_name,
        avatar_upload_id: body.avatar_upload_id,
        bio: body.bio,
    };
    Ok(Json(profiles::update(&state.ctx, me, input).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserSearchQuery {
    /// 1–64 characters (trimmed; case-insensitive): a prefix of a username or display
    /// name, or a near spelling of one.
    #[param(required = true, min_length = 1, max_length = 64, example = "ali")]
    q: Option<String>,
    /// Page size, 1–50 (default 20).
    #[param(minimum = 1, maximum = 50)]
    limit: Option<i64>,
    /// The `nextCursor` of the previous page with the same `q` (opaque).
    cursor: Option<String>,
}

/// Finds users by username or display name (prefix or trigram match), best first;
/// never the caller nor users who blocked the caller. Limited per user
/// (`RATE_LIMIT_USER_SEARCH_MAX` per `RATE_LIMIT_USER_SEARCH_WINDOW_SECS`).
#[utoipa::path(
    get,
    path = "/users/search",
    operation_id = "searchUsers",
    tag = "users",
    security(("bearer" = [])),
    params(UserSearchQuery),
    responses(
        (status = 200, description = "A page of users, best match first", body = UserSearchPage),
        BadRequest, Unauthorized, RateLimited, ServerErrors,
    )
)]
pub async fn search(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiQuery(q): ApiQuery<UserSearchQuery>,
) -> ApiResult<Json<UserSearchPage>> {
    let input = UserSearchInput {
        q: q.q.unwrap_or_default(),
        limit: q.limit,
        cursor: q.cursor,
    };
    Ok(Json(user_search::search(&state.ctx, me, input).await?))
}
