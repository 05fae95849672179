//! `GET /_gatehouse/auth`: forward authentication for nginx `auth_request`, Caddy `forward_auth` and
//! Traefik `ForwardAuth`. 200 with the identity headers for a valid session cookie, 401 otherwise; the
//! front proxy copies the headers onto the request it sends to the app.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};

use super::error::ErrorReply;
use super::extract::current_session;
use crate::app::SharedState;
use crate::proxy::headers::inject_identity;

pub async fn forward_auth(State(state): State<SharedState>, headers: HeaderMap) -> Result<Response, ErrorReply> {
    match current_session(&state, &headers).await? {
        Some(current) => {
            let mut response = StatusCode::OK.into_response();
            let identity = current.identity(&state.assertions, state.clock.now());
            inject_identity(response.headers_mut(), identity, &state.config.upstream.header_aliases);
            Ok(response)
        }
        None => Err(ErrorReply::unauthorized()),
    }
}
