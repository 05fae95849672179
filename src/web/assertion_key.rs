//! `GET /_gatehouse/assertion-key` (no sign-in): the public key that verifies `X-Gatehouse-Assertion`, as a
//! JWK, for apps that are not started by `gatehouse run` (which hands them the key in
//! `GATEHOUSE_ASSERTION_PUBLIC_KEY`). Public by nature: it only lets people check signatures.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::SharedState;

pub async fn assertion_key(State(state): State<SharedState>) -> Response {
    let jwk = json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": state.assertions.public_key_b64(),
        "alg": "EdDSA",
        "use": "sig",
    });
    let mut response = Json(jwk).into_response();
    response.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("public, max-age=300"));
    response
}
