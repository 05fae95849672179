//! `GET /_gatehouse/.well-known/openid-configuration` and `GET /_gatehouse/oidc/jwks`: what relying parties
//! fetch before anything else. The JWKS may be cached briefly; a client meeting an unknown `kid` after a
//! rotation fetches it again.

use axum::extract::State;
use axum::response::Response;
use http::header::CACHE_CONTROL;
use http::{HeaderValue, StatusCode};
use serde_json::json;

use super::json_reply;
use crate::app::SharedState;
use crate::oidc::error::OAuthError;

pub async fn discovery(State(state): State<SharedState>) -> Response {
    let mut response = json_reply(StatusCode::OK, &state.oidc.discovery());
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response
}

pub async fn jwks(State(state): State<SharedState>) -> Response {
    match state.oidc.keys().published(state.clock.now()).await {
        Ok(keys) => {
            let mut response = json_reply(StatusCode::OK, &json!({ "keys": keys }));
            response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
            response
        }
        Err(err) => {
            let error = OAuthError::from(err);
            json_reply(error.token_status(), &error.to_json())
        }
    }
}
