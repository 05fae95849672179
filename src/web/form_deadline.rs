//! Bodies sent to Gatehouse's own pages must arrive whole within `[server] form_timeout`. Without a
//! deadline, thousands of unauthenticated `POST /_gatehouse/login` with a `Content-Length` and no body (or one
//! byte every few seconds) each hold a connection and its buffers for as long as the client likes. Every
//! such body is at most [`MAX_FORM_BYTES`], so it is read here at once, before the router runs (which is
//! also why a stalled body costs little memory: no handler's state exists yet): a late one gets 408 and the
//! connection closes, an oversized one 413.

use std::error::Error as _;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::header::{CONNECTION, CONTENT_LENGTH, HeaderValue};
use http_body::Body as _;
use http_body_util::LengthLimitError;

use super::error::ErrorReply;
use super::form::MAX_FORM_BYTES;
use crate::app::SharedState;

/// The request with its body read in full, or the reply that refuses it.
pub async fn read_form_body(state: &SharedState, request: Request) -> Result<Request, Response> {
    if request.body().is_end_stream() {
        return Ok(request);
    }
    let declared = request.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_FORM_BYTES as u64) {
        return Err(closing(ErrorReply::payload_too_large()));
    }
    let (parts, body) = request.into_parts();
    let deadline = state.config.server.limits.form_timeout;
    match tokio::time::timeout(deadline, axum::body::to_bytes(body, MAX_FORM_BYTES)).await {
        Ok(Ok(bytes)) => Ok(Request::from_parts(parts, Body::from(bytes))),
        Ok(Err(err)) if is_length_limit(&err) => Err(closing(ErrorReply::payload_too_large())),
        Ok(Err(_)) => Err(closing(ErrorReply::bad_request("The form could not be read."))),
        Err(_) => {
            tracing::info!(path = parts.uri.path(), "a form body did not arrive in time");
            Err(closing(ErrorReply::request_timeout()))
        }
    }
}

fn is_length_limit(err: &axum::Error) -> bool {
    let mut source = err.source();
    while let Some(cause) = source {
        if cause.is::<LengthLimitError>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// The reply, with the connection closed after it: the rest of the body may still be on its way.
fn closing(reply: ErrorReply) -> Response {
    let mut response = reply.into_response();
    response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    response
}
