//! Per-request context and the outermost middleware: a request id for every request (echoed as
//! `X-Request-Id`), request metrics, one access-log line, and the rendering of [`ErrorReply`]s into HTML
//! or JSON depending on who asked.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{HeaderMap, HeaderName, Method, StatusCode, Uri};
use serde_json::json;

use super::error::ErrorReply;
use super::templates::render;
use crate::app::SharedState;
use crate::config::brand::BrandConfig;

/// Short random id tying a response, an error page and a log line together. Not a secret. Kept as a header
/// value, so echoing it to the app and the client costs a reference count, not a copy.
#[derive(Debug, Clone)]
pub struct RequestId(HeaderValue);

impl RequestId {
    pub fn generate() -> Self {
        let hex = format!("{:016x}", rand::random::<u64>());
        Self(HeaderValue::from_str(&hex).expect("hex digits are a valid header value"))
    }

    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }

    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }
}

/// Marks a response that came from the app, so its errors pass through untouched.
#[derive(Debug, Clone, Copy)]
pub struct Proxied;

/// Whether a response came from the app (passed on untouched) or from Gatehouse (its errors get a page).
pub enum Answer {
    App(Response),
    Own(Response),
}

/// Whether a request is a page load by a person (gets HTML and redirects) rather than an API or XHR call
/// (gets JSON and status codes). Browsers say so with `Sec-Fetch-Mode`; for other clients anything that does
/// not ask for JSON (or identify as XHR) is treated as a page load, as oauth2-proxy does, so `curl` sees the
/// redirect to the sign-in page.
pub fn wants_html(headers: &HeaderMap) -> bool {
    if let Some(mode) = headers.get("sec-fetch-mode").and_then(|v| v.to_str().ok()) {
        return mode == "navigate";
    }
    if headers.get("x-requested-with").is_some() {
        return false;
    }
    let accept = headers.get(ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    accept.contains("text/html") || !accept.contains("json")
}

/// What the outermost layer remembers of a request until its response is ready.
pub struct RequestContext {
    started: Instant,
    pub id: RequestId,
    html: bool,
    method: Method,
    /// Only the path is ever logged: query strings can carry secrets (setup tokens).
    uri: Uri,
}

impl RequestContext {
    pub fn begin<B>(request: &Request<B>) -> Self {
        Self {
            started: Instant::now(),
            id: RequestId::generate(),
            html: wants_html(request.headers()),
            method: request.method().clone(),
            uri: request.uri().clone(),
        }
    }

    /// Renders Gatehouse's own errors, adds `X-Request-Id`, counts and logs the response.
    pub fn finish(self, answer: Answer, brand: &BrandConfig) -> Response {
        let (mut response, proxied) = match answer {
            Answer::App(response) => (response, true),
            Answer::Own(response) => {
                let proxied = response.extensions().get::<Proxied>().is_some();
                (response, proxied)
            }
        };
        if !proxied {
            if let Some(reply) = response.extensions_mut().remove::<ErrorReply>() {
                response = replace_body(response, render_error(&reply, self.html, &self.id, brand));
            } else if is_bare_error(&response) {
                let reply = ErrorReply::for_status(response.status());
                response = replace_body(response, render_error(&reply, self.html, &self.id, brand));
            }
        }
        response.headers_mut().insert(REQUEST_ID, self.id.0.clone());

        let status = response.status();
        crate::telemetry::hot_metrics().count_response(status);
        if tracing::enabled!(target: "gatehouse::access", tracing::Level::DEBUG) || !proxied {
            let elapsed_ms = (self.started.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0;
            let (id, method, path, status) = (self.id.as_str(), &self.method, self.uri.path(), status.as_u16());
            if proxied {
                tracing::debug!(target: "gatehouse::access", request_id = id, %method, path, status, elapsed_ms, "proxied");
            } else {
                tracing::info!(target: "gatehouse::access", request_id = id, %method, path, status, elapsed_ms, "served");
            }
        }
        response
    }
}

/// The outermost middleware of Gatehouse's own pages (the proxy path calls [`RequestContext`] directly).
pub async fn request_context(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let context = RequestContext::begin(&request);
    context.finish(Answer::Own(next.run(request).await), &state.config.brand)
}

/// `X-Request-Id`, on the response and on the request to the app.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// An error status with no page of its own (axum's plain-text rejections, e.g. 405 or 413).
fn is_bare_error(response: &Response) -> bool {
    let status = response.status();
    let plain = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| ct.starts_with("text/plain"));
    (status.is_client_error() || status.is_server_error()) && plain
}

/// Keeps the headers an error response already had (cookies, `Allow`, ...) under the rendered page's own.
fn replace_body(original: Response, mut rendered: Response) -> Response {
    let own: Vec<http::HeaderName> = rendered.headers().keys().cloned().collect();
    let mut last_name = None;
    for (name, value) in original.into_parts().0.headers {
        if let Some(name) = name {
            last_name = Some(name);
        }
        let Some(name) = last_name.clone() else {
            continue;
        };
        if name == CONTENT_TYPE || name == http::header::CONTENT_LENGTH || own.contains(&name) {
            continue;
        }
        rendered.headers_mut().append(name, value);
    }
    rendered
}

/// Renders an error for a browser (branded page) or a program (JSON).
pub fn render_error(reply: &ErrorReply, html: bool, id: &RequestId, brand: &BrandConfig) -> Response {
    let (content_type, body) = if html {
        let default_action = match reply.status {
            StatusCode::UNAUTHORIZED => Some(("/_gatehouse/login", "Sign in")),
            StatusCode::FORBIDDEN if reply.code == "role_required" => {
                Some(("/_gatehouse/logout", "Sign in as someone else"))
            }
            StatusCode::SERVICE_UNAVAILABLE if reply.code == "upstream_starting" => None,
            _ => Some(("/", "Back to the app")),
        };
        let action = reply.action.as_ref().map(|(href, label)| (href.as_str(), *label)).or(default_action);
        let page = render(
            "error.html",
            brand,
            minijinja::context! {
                status => reply.status.as_u16(),
                title => reply.title,
                message => reply.message,
                request_id => id.as_str(),
                refresh => reply.retry_after.filter(|_| reply.code == "upstream_starting"),
                action_href => action.map(|a| a.0),
                action_label => action.map(|a| a.1),
            },
        );
        ("text/html; charset=utf-8", page)
    } else {
        let body = json!({ "error": reply.code, "message": reply.message, "request_id": id.as_str() });
        ("application/json", body.to_string())
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = reply.status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    super::apply_security_headers(headers);
    if let Some(secs) = reply.retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_loads_and_api_calls_are_told_apart() {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("text/html,application/xhtml+xml"));
        assert!(wants_html(&headers));
        headers.insert("x-requested-with", HeaderValue::from_static("XMLHttpRequest"));
        assert!(!wants_html(&headers));
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!wants_html(&headers));
        headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
        assert!(wants_html(&headers), "curl-style clients get the redirect");
        headers.insert("sec-fetch-mode", HeaderValue::from_static("cors"));
        assert!(!wants_html(&headers));
        headers.insert("sec-fetch-mode", HeaderValue::from_static("navigate"));
        assert!(wants_html(&headers));
    }
}
