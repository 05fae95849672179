//! `GET /_gatehouse/metrics`: Prometheus text format. Request counts and latencies are recorded as they
//! happen; the active-session gauge is read from the database at scrape time.

use axum::extract::State;
use axum::response::IntoResponse;
use http::header::CONTENT_TYPE;

use crate::app::SharedState;

pub async fn metrics(State(state): State<SharedState>) -> impl IntoResponse {
    match state.store.count_active_sessions(state.clock.now()).await {
        Ok(count) => metrics::gauge!("gatehouse_active_sessions").set(count as f64),
        Err(err) => tracing::warn!(error = %err, "could not count active sessions for metrics"),
    }
    metrics::gauge!("gatehouse_websockets_tracked").set(state.sessions.revocations().live_count() as f64);
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}
