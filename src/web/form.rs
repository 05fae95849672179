//! Reading HTML form posts: only `application/x-www-form-urlencoded`, at most [`MAX_FORM_BYTES`], and any
//! malformed body is a friendly 400 page rather than a framework error.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

use super::error::ErrorReply;

/// No Gatehouse form comes anywhere near this; larger bodies are refused before parsing.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

pub struct HtmlForm<T>(pub T);

impl<S, T> FromRequest<S> for HtmlForm<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ErrorReply;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_form = request.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
            ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
        });
        if !is_form {
            return Err(ErrorReply::bad_request("Expected a form submission."));
        }
        let body = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
                ErrorReply::payload_too_large()
            } else {
                ErrorReply::bad_request("The form could not be read.")
            }
        })?;
        serde_urlencoded::from_bytes::<T>(&body).map(HtmlForm).map_err(|_| {
            ErrorReply::bad_request("The form was incomplete or malformed. Reload the page and try again.")
        })
    }
}
