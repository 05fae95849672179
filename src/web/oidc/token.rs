//! `POST /_gatehouse/oidc/token` and `GET|POST /_gatehouse/oidc/userinfo`: JSON in RFC 6749 §5 and
//! RFC 6750 §3 shapes, errors included (never Gatehouse's own error pages).

use axum::body::Bytes;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::{form_params, json_reply};
use crate::app::SharedState;
use crate::oidc::error::OAuthError;
use crate::proxy::forwarded::client_ip;

pub async fn token(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match form_params(&headers, &body) {
        Ok(form) => form,
        Err(description) => return oauth_error(&OAuthError::invalid_request(description), false),
    };
    let authorization = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    let from_ip = client_ip(peer, &headers, &state.config.server.trusted_proxies).to_string();
    match state.oidc.token(&form, authorization, &from_ip).await {
        Ok(tokens) => json_reply(StatusCode::OK, &tokens),
        Err(failure) => {
            if failure.error.code != crate::oidc::error::ErrorCode::ServerError {
                tracing::info!(
                    client = failure.client_id.as_deref().unwrap_or("(none)"),
                    error = failure.error.code.as_str(),
                    reason = failure.error.description,
                    "token request refused"
                );
            }
            oauth_error(&failure.error, failure.basic_challenge)
        }
    }
}

fn oauth_error(error: &OAuthError, basic_challenge: bool) -> Response {
    let mut response = json_reply(error.token_status(), &error.to_json());
    if basic_challenge {
        response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"gatehouse\""));
    }
    response
}

/// The access token comes as `Authorization: Bearer` or, on POST, as the `access_token` form field
/// (RFC 6750 §2.1-2.2); never from the query string, where it would end up in logs.
pub async fn userinfo(State(state): State<SharedState>, method: Method, headers: HeaderMap, body: Bytes) -> Response {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let from_form = if method == Method::POST && bearer.is_none() {
        form_params(&headers, &body).ok().and_then(|form| form.get("access_token").map(str::to_owned))
    } else {
        None
    };
    let Some(token) = bearer.or(from_form) else {
        // RFC 6750 §3.1: no credentials at all is answered without an error code.
        let mut response = json_reply(
            StatusCode::UNAUTHORIZED,
            &serde_json::json!({ "error": "invalid_request", "error_description": "no access token" }),
        );
        response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"gatehouse\""));
        return response;
    };
    match state.oidc.userinfo(&token).await {
        Ok(claims) => json_reply(StatusCode::OK, &claims),
        Err(error) if error.code == crate::oidc::error::ErrorCode::ServerError => {
            json_reply(error.token_status(), &error.to_json())
        }
        Err(error) => {
            let mut response = json_reply(StatusCode::UNAUTHORIZED, &error.to_json());
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"gatehouse\", error=\"invalid_token\""),
            );
            response
        }
    }
}
