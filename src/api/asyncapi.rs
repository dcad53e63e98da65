//! The AsyncAPI 3.0 description of the realtime side (Socket.IO namespace `/chat` and the
//! SSE stream `/events`), kept by hand in `docs/asyncapi.json` and served as is at
//! `GET /asyncapi.json`, beside `/openapi.json`.

use axum::http::header;
use axum::response::IntoResponse;

/// The document, as committed.
pub const DOCUMENT: &str = include_str!("../../docs/asyncapi.json");

/// `GET /asyncapi.json`.
pub async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_asyncapi_3_json() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
        assert_eq!(doc["asyncapi"], "3.0.0");
        assert_eq!(doc["channels"]["chat"]["address"], "/chat");
        assert_eq!(doc["channels"]["events"]["address"], "/events");
    }
}
