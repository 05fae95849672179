//! `/_gatehouse/static/*`: the stylesheet and the icon of Gatehouse's pages, and the script that follows a
//! session in the app's open tabs, compiled into the binary; the app's colour and logo (`[theme]`).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};

use super::error::ErrorReply;
use crate::app::SharedState;

const STYLESHEET: &str = include_str!("../../static/gatehouse.css");
/// Named by every page, so browsers do not ask for `/favicon.ico` (which, signed out, is a 401 like any other
/// path of the app's).
const ICON: &str = include_str!("../../static/favicon.svg");
/// Added to the app's pages by `proxy::page_script`, so open tabs follow their session.
const SESSION_SCRIPT: &str = include_str!("../../static/session.js");

pub async fn static_file(State(state): State<SharedState>, Path(name): Path<String>) -> Response {
    let brand = &state.config.brand;
    match name.as_str() {
        // The app's colour and logo ([theme]): only when configured (or read from the app by `run`).
        "theme.css" => match brand.primary_color {
            Some(colour) => (
                [(CONTENT_TYPE, "text/css; charset=utf-8"), (CACHE_CONTROL, "public, max-age=300")],
                colour.theme_css(),
            )
                .into_response(),
            None => ErrorReply::not_found().into_response(),
        },
        "logo" => match &brand.logo {
            Some(logo) => {
                ([(CONTENT_TYPE, logo.content_type), (CACHE_CONTROL, "public, max-age=300")], logo.bytes.clone())
                    .into_response()
            }
            None => ErrorReply::not_found().into_response(),
        },
        "gatehouse.css" => {
            ([(CONTENT_TYPE, "text/css; charset=utf-8"), (CACHE_CONTROL, "public, max-age=3600")], STYLESHEET)
                .into_response()
        }
        "favicon.svg" => {
            ([(CONTENT_TYPE, "image/svg+xml"), (CACHE_CONTROL, "public, max-age=86400")], ICON).into_response()
        }
        "session.js" => (
            [(CONTENT_TYPE, "text/javascript; charset=utf-8"), (CACHE_CONTROL, "public, max-age=3600")],
            SESSION_SCRIPT,
        )
            .into_response(),
        _ => ErrorReply::not_found().into_response(),
    }
}
