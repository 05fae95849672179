//! `GET /_gatehouse/auth`: forward authentication for nginx `auth_request`, Caddy `forward_auth` and
//! Traefik `ForwardAuth`. 200 with the identity headers for a valid session cookie, 401 otherwise; the
//! front proxy copies the headers onto the request it sends to the app.
//!
//! The `[[access]]` rules apply to the original request, which the front proxy names in `X-Original-URI`
//! (nginx) or `X-Forwarded-Uri` (Caddy, Traefik), with its host in `X-Forwarded-Host` (else `Host`): a public
//! path answers 200 even without a session, a signed-in user without the needed role gets 403.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};

use super::error::ErrorReply;
use super::extract::current_session;
use crate::app::SharedState;
use crate::domain::access::Access;
use crate::proxy::headers::inject_identity;

pub async fn forward_auth(State(state): State<SharedState>, headers: HeaderMap) -> Result<Response, ErrorReply> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let path = header("x-original-uri").or_else(|| header("x-forwarded-uri")).unwrap_or("/");
    let host = header("x-forwarded-host").or_else(|| header("host"));
    let access = state.config.access.decide(host, path);
    let current = match current_session(&state, &headers).await {
        Ok(current) => current,
        Err(_) if access == Access::Public => None,
        Err(reply) => return Err(reply),
    };
    match current {
        Some(current) if !access.allows(&current.user.roles) => {
            Err(ErrorReply::role_required(access, current.user.username.as_str()))
        }
        Some(current) => {
            let mut response = StatusCode::OK.into_response();
            let identity = current.identity(&state.assertions, state.clock.now());
            inject_identity(response.headers_mut(), identity, &state.config.upstream.header_aliases);
            Ok(response)
        }
        None if access == Access::Public => Ok(StatusCode::OK.into_response()),
        None => Err(ErrorReply::unauthorized()),
    }
}
