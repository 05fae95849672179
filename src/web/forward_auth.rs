//! `GET /_gatehouse/auth`: forward authentication for nginx `auth_request`, Caddy `forward_auth` and
//! Traefik `ForwardAuth`. 200 with the identity headers for a valid session cookie, 401 otherwise; the
//! front proxy copies the headers onto the request it sends to the app.
//!
//! The `[[access]]` rules apply to the original request, which the front proxy names in `X-Original-URI`
//! (nginx) or `X-Forwarded-Uri` (Caddy, Traefik), with its host in `X-Forwarded-Host` (else `Host`): a public
//! path answers 200 even without a session, a signed-in user without the needed role gets 403.
//!
//! The front proxy forwards the request as it received it, so Gatehouse cannot rewrite it into canonical
//! form as it does for what it proxies itself: a host or path that is not already canonical (`//admin`,
//! `/%61dmin`, `/a/../b`, `Host: ops.example.com:abc`) is refused with 403, since the app behind could read
//! it differently from how it was judged. 403 rather than 400 because nginx's `auth_request` turns any
//! answer but 401 and 403 into a 500.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};

use super::error::ErrorReply;
use super::extract::current_session;
use crate::app::SharedState;
use crate::domain::access::Access;
use crate::domain::request_target::{TargetError, canonical_host, canonical_path, judged_path};
use crate::proxy::headers::inject_identity;

/// The host name and path of the request the front proxy is asking about, which must both be canonical
/// already: the front proxy forwards them as they are.
fn original_target(headers: &HeaderMap) -> Result<(Option<&str>, &str), TargetError> {
    let header = |name: &str| headers.get(name).map(|v| v.to_str().map_err(|_| TargetError::NotAPath));
    let (original, forwarded) = (header("x-original-uri").transpose()?, header("x-forwarded-uri").transpose()?);
    // Front proxies copy the client's headers onto the auth request and set only their own one: a client
    // could add the other to pick the rule it is judged by. Two that disagree are refused.
    if let (Some(original), Some(forwarded)) = (original, forwarded)
        && original != forwarded
    {
        return Err(TargetError::ConflictingTarget);
    }
    let uri = original.or(forwarded).unwrap_or("/");
    // A request target never holds a fragment; a `#` here is an attacker's, and some servers (uvicorn with
    // h11, Go) keep it in the path the app routes on.
    if uri.contains('#') {
        return Err(TargetError::NotCanonical);
    }
    let path = uri.split('?').next().unwrap_or_default();
    if canonical_path(path)? != path {
        return Err(TargetError::NotCanonical);
    }
    let host =
        header("x-forwarded-host").or_else(|| header("host")).transpose().map_err(|_| TargetError::MalformedHost)?;
    let host = match host {
        Some(raw) => {
            let form = canonical_host(raw)?;
            if form.text != raw {
                return Err(TargetError::NotCanonical);
            }
            Some(&raw[..form.name_len])
        }
        None => None,
    };
    Ok((host, path))
}

pub async fn forward_auth(State(state): State<SharedState>, headers: HeaderMap) -> Result<Response, ErrorReply> {
    let (host, path) = original_target(&headers).map_err(|error| {
        tracing::info!(reason = error.code(), "forward-auth refused a request without a canonical host and path");
        ErrorReply::not_canonical(error.message())
    })?;
    let access = state.config.access.decide(host, &judged_path(path));
    let current = match current_session(&state, &headers).await {
        Ok(current) => current,
        Err(_) if access == Access::Public => None,
        Err(reply) => return Err(reply),
    };
    match current {
        Some(current) if let Some(needed) = access.unmet(&current.user.roles) => {
            Err(ErrorReply::role_required(needed, current.user.username.as_str()))
        }
        Some(current) => {
            let mut response = StatusCode::OK.into_response();
            let identity = current.identity(&state.assertions, state.clock.now());
            inject_identity(response.headers_mut(), identity, &state.config.upstream.header_aliases, None);
            Ok(response)
        }
        None if access == Access::Public => Ok(StatusCode::OK.into_response()),
        None => Err(ErrorReply::unauthorized()),
    }
}
