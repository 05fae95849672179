//! `/_gatehouse/static/*`: the stylesheet, compiled into the binary.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};

use super::error::ErrorReply;

const STYLESHEET: &str = include_str!("../../static/gatehouse.css");

pub async fn static_file(Path(name): Path<String>) -> Response {
    match name.as_str() {
        "gatehouse.css" => {
            ([(CONTENT_TYPE, "text/css; charset=utf-8"), (CACHE_CONTROL, "public, max-age=3600")], STYLESHEET)
                .into_response()
        }
        _ => ErrorReply::not_found().into_response(),
    }
}
