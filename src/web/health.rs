//! `GET /_gatehouse/health` (no sign-in): the database and the app, 200 when both answer, 503 otherwise.
//! Load balancers take a failing instance out of rotation; the body says which part is down.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use crate::app::SharedState;
use crate::proxy::upstream::{AckPolicy, UpstreamState};

pub async fn health(State(state): State<SharedState>) -> Response {
    let database_ok = state.store.ping().await.is_ok();
    let upstream = match &state.upstream {
        None => "none",
        Some(upstream) if upstream.status.get() == UpstreamState::Starting => "starting",
        Some(upstream) => {
            match tokio::time::timeout(Duration::from_secs(2), upstream.connector.connect(AckPolicy::AtLineEnd)).await {
                Ok(Ok(_)) => "ok",
                _ => "down",
            }
        }
    };
    let healthy = database_ok && matches!(upstream, "ok" | "none");
    let body = json!({
        "status": if healthy { "ok" } else { "unavailable" },
        "database": { "status": if database_ok { "ok" } else { "down" }, "backend": state.store.backend() },
        "upstream": { "status": upstream },
    });
    let status = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let mut response = (status, Json(body)).into_response();
    // Health is a probe result, not an error page: keep the JSON as it is.
    response.extensions_mut().insert(super::context::Proxied);
    response
}
