//! The tab script: one `<script>` tag Gatehouse adds to the app's HTML pages, so that an open tab follows its
//! session (`static/session.js`, over `/_gatehouse/session/live`): when the session ends, the tab leaves the
//! app for the sign-in page and comes back after signing in; shortly before an idle timeout it offers "Stay
//! signed in". Streamlit's own frontend never navigates when its WebSocket is refused; it shows "Connection
//! error" over the app's last content (see FACTS.md), so this needs a script, and no change to the app.
//!
//! Only top-level page loads of a signed-in session get it, and only complete, uncompressed HTML answers of a
//! known length up to [`MAX_PAGE`], that are not downloads (`Content-Disposition: attachment`) and do not
//! forbid changes (`Cache-Control: no-transform`), and whose `<head>` start tag opens the document (after
//! comments, the doctype and `<html>`): anything else passes untouched, so the tag can never land inside a
//! script, an attribute or text. `[session] follow_open_tabs = false` turns it off.

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

/// Larger pages are passed on untouched (Streamlit's page is about 5 KiB): each page the script is added to
/// is held in memory while it is.
pub const MAX_PAGE: usize = 256 * 1024;

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
    let download = headers
        .get(http::header::CONTENT_DISPOSITION)
        .is_some_and(|v| v.as_bytes().trim_ascii_start().to_ascii_lowercase().starts_with(b"attachment"));
    let no_transform = headers
        .get_all(http::header::CACHE_CONTROL)
        .iter()
        .any(|v| v.as_bytes().to_ascii_lowercase().windows(12).any(|w| w == b"no-transform"));
    if !html || encoded || download || no_transform {
        return None;
    }
    let length = headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse::<usize>().ok()?;
    (length <= MAX_PAGE).then_some(length)
}

/// The page with the tag right after its `<head>` start tag (and after a `<meta charset>` that follows it,
/// which browsers look for in the first 1024 bytes); `None` when the document does not open with one.
fn with_tag(page: &[u8]) -> Option<Vec<u8>> {
    let mut at = find_head_start_tag(page)?;
    if let Some(meta) = charset_meta_at(&page[at..]) {
        at += meta;
    }
    let mut out = Vec::with_capacity(page.len() + TAG.len());
    out.extend_from_slice(&page[..at]);
    out.extend_from_slice(TAG.as_bytes());
    out.extend_from_slice(&page[at..]);
    Some(out)
}

/// The position just after the `<head>` start tag that opens the document: before it only whitespace, a
/// byte order mark, comments, an XML declaration, the doctype and the `<html>` start tag may come. Any other
/// markup first (a `<head>` is optional in HTML) means `None`: the tag is then not added at all.
fn find_head_start_tag(page: &[u8]) -> Option<usize> {
    let mut at = if page.starts_with(b"\xef\xbb\xbf") { 3 } else { 0 };
    loop {
        while page.get(at).is_some_and(u8::is_ascii_whitespace) {
            at += 1;
        }
        let rest = &page[at..];
        if rest.starts_with(b"<!--") {
            at += rest.windows(3).position(|w| w == b"-->")? + 3;
        } else if starts_with_ignore_case(rest, b"<!doctype") || rest.starts_with(b"<?") {
            at += rest.iter().position(|&b| b == b'>')? + 1;
        } else if is_start_tag(rest, b"html") {
            at += tag_end(rest)?;
        } else if is_start_tag(rest, b"head") {
            return Some(at + tag_end(rest)?);
        } else {
            return None;
        }
    }
}

/// The length of a `<meta charset=...>` (or `http-equiv` content-type) tag at the start of `rest`, after
/// whitespace.
fn charset_meta_at(rest: &[u8]) -> Option<usize> {
    let skipped = rest.iter().position(|b| !b.is_ascii_whitespace())?;
    let tag = &rest[skipped..];
    if !is_start_tag(tag, b"meta") {
        return None;
    }
    let end = tag_end(tag)?;
    let lower = tag[..end].to_ascii_lowercase();
    lower.windows(7).any(|w| w == b"charset").then_some(skipped + end)
}

fn starts_with_ignore_case(bytes: &[u8], prefix: &[u8]) -> bool {
    bytes.len() >= prefix.len() && bytes[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Whether `rest` starts with the start tag `<name` (followed by `>`, `/` or whitespace, so `<header>` is not
/// `<head>`).
fn is_start_tag(rest: &[u8], name: &[u8]) -> bool {
    rest.first() == Some(&b'<')
        && starts_with_ignore_case(&rest[1..], name)
        && rest.get(1 + name.len()).is_some_and(|b| matches!(b, b'>' | b'/') || b.is_ascii_whitespace())
}

/// The length of the tag at the start of `rest`, up to and including its `>`, with quoted attribute values
/// skipped (`<head data-x="a>b">`).
fn tag_end(rest: &[u8]) -> Option<usize> {
    let mut quote: Option<u8> = None;
    for (index, &byte) in rest.iter().enumerate() {
        match (quote, byte) {
            (Some(open), b) if b == open => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(byte),
            (None, b'>') => return Some(index + 1),
            (None, _) => {}
        }
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
        // "<header>" is not "<head>", and markup before the head means the document has no head tag.
        assert_eq!(find_head_start_tag(b"<header><head>"), None);
        // Downloads and pages that forbid changes pass untouched.
        for (name, value) in
            [("content-disposition", "attachment; filename=report.html"), ("cache-control", "private, no-transform")]
        {
            let mut r = page(html);
            r.headers_mut().insert(name, HeaderValue::from_static(value));
            assert_eq!(text(add_script(r).await.unwrap()).await, html, "{name}: {value}");
        }
    }

    #[test]
    fn the_tag_never_lands_in_a_script_an_attribute_or_text() {
        // No head tag (it is optional): a "<head" later in a script or text is not one.
        for page in [
            "<!DOCTYPE html><title>x</title><script>var s = \"<head>\";</script>",
            "<!DOCTYPE html><p>type <head> here</p>",
            "<!DOCTYPE html><textarea><head></textarea>",
            "<html lang=\"<head>\"><body>",
        ] {
            assert_eq!(with_tag(page.as_bytes()), None, "{page}");
        }
        // A quoted '>' inside the head tag does not end it.
        let quoted = with_tag(b"<head data-x=\"a>b\" class='c>d'><title>t</title>").unwrap();
        assert!(
            String::from_utf8(quoted).unwrap().starts_with(&format!("<head data-x=\"a>b\" class='c>d'>{TAG}<title>"))
        );
        // After a byte order mark, an XML declaration, comments, the doctype and <html ...>.
        let long =
            "\u{feff}<?xml version=\"1.0\"?>\n<!-- a -->\n<!doctype html>\n<HTML lang=en>\n<head>\n<title>t</title>";
        let tagged = String::from_utf8(with_tag(long.as_bytes()).unwrap()).unwrap();
        assert!(tagged.contains(&format!("<head>{TAG}\n<title>")), "{tagged}");
    }

    #[test]
    fn the_charset_declaration_stays_first() {
        let page = "<!DOCTYPE html><html><head>\n    <meta charset=\"UTF-8\" />\n    <title>App</title>";
        let tagged = String::from_utf8(with_tag(page.as_bytes()).unwrap()).unwrap();
        assert!(tagged.contains(&format!("<meta charset=\"UTF-8\" />{TAG}\n    <title>")), "{tagged}");
        let other_meta = "<head><meta name=\"viewport\" content=\"width=device-width\"><title>t</title>";
        let tagged = String::from_utf8(with_tag(other_meta.as_bytes()).unwrap()).unwrap();
        assert!(tagged.starts_with(&format!("<head>{TAG}<meta name=")), "{tagged}");
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
