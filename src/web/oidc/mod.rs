//! The OpenID Connect provider's HTTP face under `/_gatehouse/`: discovery and JWKS, the authorization
//! endpoint with its consent page, the token and userinfo endpoints, and end-session. Protocol decisions
//! live in [`crate::oidc::Provider`]; these handlers read requests and shape answers.

mod authorize;
mod discovery;
mod logout;
mod token;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE,
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, PRAGMA,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::app::SharedState;
use crate::oidc::request::Params;
use crate::web::error::ErrorReply;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery::discovery).options(preflight))
        .route("/oidc/jwks", get(discovery::jwks).options(preflight))
        .route("/oidc/authorize", get(authorize::authorize).post(authorize::authorize))
        .route("/oidc/consent", post(authorize::consent))
        .route("/oidc/token", post(token::token).options(preflight))
        .route("/oidc/userinfo", get(token::userinfo).post(token::userinfo).options(preflight))
        .route("/oidc/logout", get(logout::end_session).post(logout::end_session))
}

/// JSON for programs, never cached: token responses carry secrets (RFC 6749 §5.1 asks for `no-store`).
/// Browser apps on other origins may call the JSON endpoints; they carry no cookies, so `*` is safe.
fn json_reply(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut response = (status, [(CONTENT_TYPE, "application/json")], body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

/// CORS preflight for the JSON endpoints (single-page apps call token and userinfo from the browser).
async fn preflight() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST"));
    headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Authorization, Content-Type"));
    headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    response
}

/// A form body as protocol parameters: `application/x-www-form-urlencoded` only, each name once.
fn form_params(headers: &HeaderMap, body: &Bytes) -> Result<Params, &'static str> {
    let is_form = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
        ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    });
    if !is_form {
        return Err("the body must be application/x-www-form-urlencoded");
    }
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8")?;
    Params::parse(text)
}

/// The parameters of a GET (query) or POST (form body) request, as the authorization and end-session
/// endpoints accept both (OpenID Connect Core §3.1.2.1). A malformed request is not refused here: each
/// endpoint says so in its own words.
pub struct ProtocolParams {
    pub method: Method,
    pub params: Result<Params, &'static str>,
}

impl<S: Send + Sync> FromRequest<S> for ProtocolParams {
    type Rejection = ErrorReply;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let method = request.method().clone();
        if method != Method::POST {
            let params = Params::parse(request.uri().query().unwrap_or(""));
            return Ok(Self { method, params });
        }
        let headers = request.headers().clone();
        let body = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ErrorReply::payload_too_large()
            } else {
                ErrorReply::bad_request("The request could not be read.")
            }
        })?;
        Ok(Self { method, params: form_params(&headers, &body) })
    }
}

/// Gatehouse pages whose forms lead (through redirects) to another origin must say so in CSP `form-action`,
/// or Chromium blocks the redirect (it checks `form-action` on every hop after a form is sent).
pub fn allow_form_targets(response: &mut Response, origins: &[String]) {
    if origins.is_empty() {
        return;
    }
    let policy = format!(
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self' {}; frame-ancestors 'none'; base-uri 'none'",
        origins.join(" ")
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response.headers_mut().insert(CONTENT_SECURITY_POLICY, value);
    }
}
