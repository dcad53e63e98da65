//! The demo web app (`clients/web`, built by the scripts into `WEB_APP_DIR`), served as
//! static files at `/app/` by `api` and `courier`.

use std::path::Path;

use axum::Router;
use tower_http::services::ServeDir;

/// `/app/` and everything under it, from `dir`; a directory serves its `index.html`.
/// The app's own files name their assets by absolute `/app/...` paths, so `/app`
/// (without the slash) works too.
pub fn routes(dir: &Path) -> Router {
    Router::new().nest_service(
        "/app",
        ServeDir::new(dir).append_index_html_on_directories(true),
    )
}
