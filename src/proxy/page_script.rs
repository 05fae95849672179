//! The tab script: one `<script>` tag Gatehouse adds to the app's HTML pages, so that an open tab follows its
//! session (`static/session.js`, over `/_gatehouse/session/live`): when the session ends, the tab leaves the
//! app for the sign-in page and comes back after signing in; shortly before an idle timeout it offers "Stay
//! signed in". Streamlit's own frontend never navigates when its WebSocket is refused; it shows "Connection
//! error" over the app's last content (see FACTS.md), so this needs a script, and no change to the app.
//!
//! Only top-level page loads of a signed-in session get it, and only complete, uncompressed HTML answers of a
//! known length up to [`MAX_PAGE`]: anything else passes untouched. `[session] follow_open_tabs = false`
//! turns it off.

use axum::body::Body;
use http::header::{
    ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG, HeaderMap, HeaderValue, IF_MODIFIED_SINCE,
    IF_NONE_MATCH, LAST_MODIFIED,
};
use http::{Response, StatusCode};

use crate::web::context::wants_html;

/// Where the script is served (`web::static_files`).
pub const SCRIPT_PATH: &str = "/_gatehouse/static/session.js";

/// The tag, placed right after `<head ...>`. `defer`: it runs once the page is parsed and never holds up
/// the app's own scripts.
const TAG: &str = "<script src=\"/_gatehouse/static/session.js\" defer></script>";

/// Larger pages are passed on untouched (Streamlit's page is about 5 KiB).
pub const MAX_PAGE: usize = 1 << 20;

/// Whether a request is a tab loading a page (not a frame, a script or an API call): only such answers get
/// the script. Browsers say so with `Sec-Fetch-Dest`.
pub fn is_page_load(headers: &HeaderMap) -> bool {
    match headers.get("sec-fetch-dest") {
        Some(dest) => dest.as_bytes() == b"document",
        None => wants_html(headers),
    }
}

/// For a page load that may get the script: ask the app for the whole page, uncompressed (the script cannot
/// be added to compressed bytes, nor to a "not modified" answer for a copy cached without it).
pub fn prepare_request(headers: &mut HeaderMap) {
    headers.remove(ACCEPT_ENCODING);
    headers.remove(IF_NONE_MATCH);
    headers.remove(IF_MODIFIED_SINCE);
}

/// Adds the script to the app's answer when it is a complete HTML page; anything else passes untouched.
pub async fn add_script(response: Response<Body>) -> Result<Response<Body>, super::ProxyError> {
    let Some(length) = injectable_length(&response) else {
        return Ok(response);
    };
    let (mut parts, body) = response.into_parts();
    let page = axum::body::to_bytes(body, length)
        .await
        .map_err(|err| super::ProxyError::Upstream(format!("the app's page could not be read: {err}")))?;
    let page = match with_tag(&page) {
        Some(changed) => bytes::Bytes::from(changed),
        None => page,
    };
    parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(page.len()));
    // The page differs from the app's, so the app's validators no longer describe it.
    parts.headers.remove(ETAG);
    parts.headers.remove(LAST_MODIFIED);
    Ok(Response::from_parts(parts, Body::from(page)))
}

/// The declared length of an answer the script can be added to.
fn injectable_length(response: &Response<Body>) -> Option<usize> {
    if response.status() != StatusCode::OK {
        return None;
    }
    let headers = response.headers();
    let html = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
    let encoded = headers.get(CONTENT_ENCODING).is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
    if !html || encoded {
        return None;
    }
    let length = headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse::<usize>().ok()?;
    (length <= MAX_PAGE).then_some(length)
}

/// The page with the tag right after its `<head>` start tag; `None` when it has none (the tag is never put
/// before a doctype, which would switch the page to quirks mode).
fn with_tag(page: &[u8]) -> Option<Vec<u8>> {
    let head = find_head_start_tag(page)?;
    let mut out = Vec::with_capacity(page.len() + TAG.len());
    out.extend_from_slice(&page[..head]);
    out.extend_from_slice(TAG.as_bytes());
    out.extend_from_slice(&page[head..]);
    Some(out)
}

/// The position just after the first `<head>` or `<head ...>` tag (any letter case), outside comments.
fn find_head_start_tag(page: &[u8]) -> Option<usize> {
    let mut at = 0;
    while at < page.len() {
        let rest = &page[at..];
        if rest.starts_with(b"<!--") {
            let end = rest.windows(3).position(|w| w == b"-->")?;
            at += end + 3;
            continue;
        }
        if rest.len() >= 6
            && rest[..5].eq_ignore_ascii_case(b"<head")
            && matches!(rest[5], b'>' | b' ' | b'\t' | b'\n' | b'\r' | b'/')
        {
            let close = rest.iter().position(|&b| b == b'>')?;
            return Some(at + close + 1);
        }
        at += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(html: &str) -> Response<Body> {
        Response::builder()
            .header(CONTENT_TYPE, "text/html; charset=utf-8")
            .header(CONTENT_LENGTH, html.len())
            .header(ETAG, "\"abc\"")
            .body(Body::from(html.to_owned()))
            .unwrap()
    }

    async fn text(response: Response<Body>) -> String {
        String::from_utf8(axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn the_tag_goes_right_after_head_and_the_length_follows() {
        let html = "<!--\n <head> in a comment\n-->\n<!DOCTYPE html><html><HEAD lang=en><title>x</title></head></html>";
        let answer = add_script(page(html)).await.unwrap();
        assert_eq!(answer.headers()[CONTENT_LENGTH], (html.len() + TAG.len()).to_string().as_str());
        assert!(answer.headers().get(ETAG).is_none());
        let body = text(answer).await;
        assert_eq!(body.len(), html.len() + TAG.len());
        assert!(body.contains(&format!("<HEAD lang=en>{TAG}<title>")), "{body}");
        assert!(body.starts_with("<!--\n <head> in a comment"), "comments untouched: {body}");
    }

    #[tokio::test]
    async fn anything_but_a_complete_plain_html_page_passes_untouched() {
        let html = "<html><head></head></html>";
        let cases = [
            page(html),
            {
                let mut r = page(html);
                r.headers_mut().insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                r
            },
            {
                let mut r = page(html);
                r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                r
            },
            {
                let mut r = page(html);
                r.headers_mut().remove(CONTENT_LENGTH);
                r
            },
            {
                let mut r = page(html);
                *r.status_mut() = StatusCode::NOT_FOUND;
                r
            },
        ];
        for (index, response) in cases.into_iter().enumerate() {
            let answer = add_script(response).await.unwrap();
            let changed = text(answer).await != html;
            assert_eq!(changed, index == 0, "case {index}");
        }
        // No <head> at all (a fragment): untouched, never a tag before the doctype.
        let fragment = "<!DOCTYPE html><p>hello</p>";
        assert_eq!(text(add_script(page(fragment)).await.unwrap()).await, fragment);
        // "<header>" is not "<head>".
        assert_eq!(find_head_start_tag(b"<header><head>"), Some(14));
    }

    #[test]
    fn only_top_level_page_loads_get_the_script() {
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(*name, HeaderValue::from_static(value));
            }
            is_page_load(&headers)
        };
        assert!(with(&[("sec-fetch-dest", "document"), ("accept", "text/html")]));
        assert!(!with(&[("sec-fetch-dest", "iframe"), ("accept", "text/html")]));
        assert!(!with(&[("sec-fetch-dest", "script")]));
        assert!(!with(&[("sec-fetch-dest", "empty"), ("sec-fetch-mode", "cors")]));
        assert!(with(&[("accept", "text/html")]), "no Sec-Fetch-Dest: an HTML page load as ever");
        assert!(!with(&[("accept", "application/json")]));
    }
}
