//! What the fuzz targets check, one function per target, shared by `cargo fuzz` (fuzz/fuzz_targets/*) and
//! by the regression test of the normal suite (tests/fuzz_regressions.rs), which runs every saved input
//! (fuzz/seeds/ and fuzz/regressions/) through the same function. Each function must never panic except
//! to report a broken property.
//!
//! Only the public API of the `gatehouse` library is used.

#![allow(dead_code)]

use std::borrow::Cow;

use gatehouse::domain::Role;
use gatehouse::domain::access::{Access, AccessPolicy, AccessRule};
use gatehouse::domain::request_target::{canonical_host, canonical_path, judged_path};

/// Splits fuzz input into up to `N` strings at NUL bytes (lossy UTF-8).
fn fields<const N: usize>(data: &[u8]) -> [String; N] {
    let mut parts = data.splitn(N, |byte| *byte == 0).map(|part| String::from_utf8_lossy(part).into_owned());
    std::array::from_fn(|_| parts.next().unwrap_or_default())
}

/// How a typical decoding server reads a raw path: percent-decoded (UTF-8, lossy), backslashes as
/// separators, `.` and `..` resolved, empty segments dropped. The reference the canonical form is held to.
fn as_a_decoding_app_reads_it(raw: &str) -> String {
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy().replace('\\', "/");
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    format!("/{}", segments.join("/"))
}

/// How a Java server (Tomcat, Spring) reads it: decoded, `;parameters` cut off every segment, then dot
/// segments resolved and empty segments merged.
fn as_a_java_app_reads_it(raw: &str) -> String {
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy().into_owned();
    let bare: Vec<&str> = decoded.split('/').map(|segment| segment.split(';').next().unwrap_or("")).collect();
    as_a_decoding_app_reads_it(&bare.join("/"))
}

fn without_trailing_slash(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() { "/".to_owned() } else { trimmed.to_owned() }
}

fn role(name: &str) -> Role {
    Role::parse(name).expect("a valid role name")
}

fn policy() -> AccessPolicy {
    AccessPolicy::new(vec![
        AccessRule::new(None, "/admin", vec![role("admin")], false).unwrap(),
        AccessRule::new(None, "/static", vec![], true).unwrap(),
        AccessRule::new(None, "/Reports", vec![role("analyst")], false).unwrap(),
        AccessRule::new(None, "/api/public", vec![], true).unwrap(),
        AccessRule::new(Some("ops.example.com"), "/", vec![role("ops")], false).unwrap(),
    ])
}

/// Request canonicalisation, differential against judging: for every host and path Gatehouse accepts,
/// the canonical form is a fixed point; an app that decodes the raw path, or the forwarded one, reads what
/// was judged; decoding never moves a segment boundary; and the decision on the judged path is never
/// looser than the decision a judge that reads only the decoded path (as an app does) would make.
pub fn canonical_request(data: &[u8]) {
    let [host, path] = fields::<2>(data);
    if let Ok(form) = canonical_host(&host) {
        let again = canonical_host(&form.text).expect("a canonical host is accepted again");
        assert_eq!(again.text, form.text, "canonical host is a fixed point");
        assert!(matches!(again.text, Cow::Borrowed(_)));
        let name = form.name();
        assert!(!name.ends_with('.') && !name.bytes().any(|b| b.is_ascii_uppercase() || b == b'%' || b == b' '));
        if let Some(port) = form.text[form.name_len..].strip_prefix(':') {
            assert!(!port.is_empty() && !port.starts_with('0') && port.bytes().all(|b| b.is_ascii_digit()));
            assert!(port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p)));
        } else {
            assert_eq!(form.name_len, form.text.len());
        }
    }
    let Ok(canonical) = canonical_path(&path) else { return };
    assert!(canonical.is_ascii() && canonical.starts_with('/'));
    assert_eq!(canonical_path(&canonical).expect("accepted again"), canonical, "canonical path is a fixed point");
    let judged = judged_path(&canonical);
    assert_eq!(as_a_decoding_app_reads_it(&path), without_trailing_slash(&judged), "raw {path:?}");
    assert_eq!(as_a_decoding_app_reads_it(&canonical), without_trailing_slash(&judged), "forwarded {canonical:?}");
    assert_eq!(canonical.split('/').count(), judged.split('/').count(), "segment boundaries moved: {canonical:?}");
    for segment in judged.split('/') {
        let bare = segment.split(';').next().unwrap_or("");
        assert!(bare != "." && bare != "..", "dot segment judged: {judged:?}");
        assert!(!segment.contains('\\'), "backslash judged: {judged:?}");
    }
    // Never looser than a judge that reads the path as any kind of app does: one that decodes (Starlette),
    // one that also cuts `;parameters` (Java), one that also ignores letter case (Express).
    let policy = policy();
    let host_name = canonical_host(&host).ok().map(|form| form.name().to_owned());
    let decided = policy.decide(host_name.as_deref(), &judged);
    let decoded = as_a_decoding_app_reads_it(&path);
    for (reader, read) in [
        ("a decoding app", decoded.clone()),
        ("a Java app", as_a_java_app_reads_it(&path)),
        ("a case-insensitive app", decoded.to_ascii_lowercase()),
        ("a case-insensitive Java app", as_a_java_app_reads_it(&path).to_ascii_lowercase()),
    ] {
        let naive = policy.decide(host_name.as_deref(), &read);
        if decided == Access::Public {
            assert_eq!(naive, Access::Public, "{path:?} judged public, but {reader} reaches a protected rule ({read})");
        }
        for roles in [vec![], vec![role("admin")], vec![role("analyst")], vec![role("ops")], vec![role("viewer")]] {
            if decided.allows(&roles) {
                assert!(naive.allows(&roles), "{path:?} allows {roles:?}, but {reader}'s rule ({read}) does not");
            }
        }
    }
}

/// Cookie handling: Gatehouse's cookies never reach the app, and the app cannot set them, named or not.
pub fn cookies(data: &[u8]) {
    use gatehouse::auth::CookieNames;
    use gatehouse::auth::cookies::{read_cookie, read_single_cookie};
    use gatehouse::proxy::headers::{remove_gatehouse_cookies, remove_gatehouse_set_cookies};
    use http::HeaderValue;
    use http::header::{COOKIE, SET_COOKIE};

    let [cookie_header, set_cookies] = fields::<2>(data);
    for names in [CookieNames::new(false), CookieNames::new(true)] {
        let mut headers = http::HeaderMap::new();
        if let Ok(value) = HeaderValue::from_bytes(cookie_header.as_bytes()) {
            headers.append(COOKIE, value);
        }
        let single = read_single_cookie(&headers, names.session).map(str::to_owned);
        if let Some(single) = &single {
            assert_eq!(read_cookie(&headers, names.session), Some(single.as_str()));
        }
        remove_gatehouse_cookies(&mut headers, &names);
        assert!(read_cookie(&headers, names.session).is_none(), "the session cookie survived: {cookie_header:?}");
        assert!(read_cookie(&headers, names.csrf).is_none(), "the CSRF cookie survived: {cookie_header:?}");

        let mut response = http::HeaderMap::new();
        for line in set_cookies.split('\n') {
            if let Ok(value) = HeaderValue::from_bytes(line.as_bytes()) {
                response.append(SET_COOKIE, value);
            }
        }
        remove_gatehouse_set_cookies(&mut response, &names);
        for value in response.get_all(SET_COOKIE) {
            let text = String::from_utf8_lossy(value.as_bytes());
            // As a browser reads it (RFC 6265bis 5.6): the pair before the first `;`, split at the first `=`;
            // without `=`, the whole pair is a nameless cookie's value.
            let pair = text.split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').unwrap_or(("", pair));
            let name = name.trim_matches([' ', '\t']);
            assert!(!name.is_empty(), "a nameless cookie passed: {text:?}");
            assert!(!names.is_gatehouse_cookie(name), "the app set {name}: {text:?}");
            let _ = value;
        }
    }
}

/// Forms: the CSRF token never verifies for a cookie Gatehouse did not mint or a token it did not make, and
/// the `Origin`/`Sec-Fetch-Site` check lets nothing cross-site through.
pub fn forms(data: &[u8]) {
    use gatehouse::auth::csrf::{CsrfGuard, check_origin};
    use http::HeaderValue;

    let [cookie, token, origin, site, body] = fields::<5>(data);
    let guard = CsrfGuard::new(b"fuzzing key, fixed so runs are repeatable".to_vec());
    assert!(guard.verify_token(Some(&cookie), &token).is_err(), "an unminted cookie verified");
    let minted = guard.new_cookie_value();
    let right = guard.token_for(&minted);
    assert!(guard.verify_token(Some(&minted), &right).is_ok());
    if token.trim() != right {
        assert!(guard.verify_token(Some(&minted), &token).is_err(), "a wrong token verified: {token:?}");
    }

    let public_url = url::Url::parse("https://apps.example.com").unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::HOST, HeaderValue::from_static("apps.example.com"));
    if let Ok(value) = HeaderValue::from_bytes(origin.as_bytes()) {
        headers.insert(http::header::ORIGIN, value);
    }
    if let Ok(value) = HeaderValue::from_bytes(site.as_bytes()) {
        headers.insert("sec-fetch-site", value);
    }
    if check_origin(&headers, &public_url).is_ok() {
        if let Some(site) = headers.get("sec-fetch-site") {
            assert!(matches!(site.as_bytes(), b"same-origin" | b"none"), "cross-site passed: {site:?}");
        }
        if let Some(origin) = headers.get(http::header::ORIGIN) {
            assert!(origin.as_bytes().eq_ignore_ascii_case(b"https://apps.example.com"), "origin passed: {origin:?}");
        }
    }
    // A form body of any shape reads as fields or is refused; never a panic.
    let _ = serde_urlencoded::from_str::<Vec<(String, String)>>(&body);
}

/// The `rd` return path after sign-in: `/`, or the path as given when a browser would keep it on this origin.
pub fn return_path(data: &[u8]) {
    use gatehouse::domain::return_path::safe_return_path;
    let raw = String::from_utf8_lossy(data);
    let safe = safe_return_path(&raw);
    assert!(safe == "/" || safe == raw, "rewritten instead of refused: {raw:?} -> {safe:?}");
    for base in ["https://apps.example.com/", "https://apps.example.com/some/page?x=1", "http://127.0.0.1:8501/a/b/"] {
        let base = url::Url::parse(base).unwrap();
        let joined = base.join(&safe).expect("a safe path joins");
        assert_eq!(joined.origin(), base.origin(), "{raw:?} leaves the origin from {base}");
    }
    assert!(!safe.contains(['\r', '\n', '\t', '\\']));
}

/// OpenID Connect authorization requests: a request is only ever accepted for, or redirected to, one of the
/// client's registered redirect URIs, with a bounded state.
pub fn oidc_request(data: &[u8]) {
    use gatehouse::domain::oidc::{ClientSecret, ClientSource, OidcClient};
    use gatehouse::oidc::request::{Params, Rejection, check, redirect_with};

    let text = String::from_utf8_lossy(data);
    let Ok(params) = Params::parse(&text) else { return };
    let registered = ["https://app.example.com/oauth2callback", "http://127.0.0.1:8502/oauth2callback"];
    let client = OidcClient {
        client_id: "app".to_owned(),
        name: "App".to_owned(),
        secret: ClientSecret::None,
        redirect_uris: registered.iter().map(|uri| (*uri).to_owned()).collect(),
        post_logout_redirect_uris: vec![],
        first_party: false,
        allowed_roles: vec![],
        source: ClientSource::Config,
        created_at: None,
    };
    let known = params.get("client_id") == Some("app");
    match check(&params, known.then(|| client.clone())) {
        Ok(request) => {
            assert!(registered.contains(&request.redirect_uri.as_str()));
            assert!(request.state.as_ref().is_none_or(|state| state.len() <= 2048));
            let to = redirect_with(
                &request.redirect_uri,
                &[("code", "x"), ("state", request.state.as_deref().unwrap_or(""))],
            );
            assert!(to.starts_with(&request.redirect_uri));
            let _ = request.resume_path(Some(1));
        }
        Err(Rejection::Redirect { redirect_uri, state, .. }) => {
            assert!(registered.contains(&redirect_uri.as_str()), "redirected to {redirect_uri:?}");
            assert!(state.is_none_or(|state| state.len() <= 2048));
        }
        Err(Rejection::Page(_)) => {}
    }
}

/// The configuration reader: any text is a configuration or a list of problems, never a panic. (Inputs
/// naming `*_file` keys are skipped: reading arbitrary files is not what is being fuzzed.)
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if text.contains("_file") {
        return;
    }
    if let Err(problems) = gatehouse::config::Config::from_toml_str(&text) {
        assert!(!problems.is_empty());
    }
}

/// The import readers: any file is rows with valid fields, or a problem with a line number, never a panic.
pub fn import(data: &[u8]) {
    use gatehouse::import::{ImportFormat, parse};
    let Some((&selector, rest)) = data.split_first() else { return };
    let format = match selector % 4 {
        0 => ImportFormat::StreamlitAuthenticator,
        1 => ImportFormat::SecretsToml,
        2 => ImportFormat::Htpasswd,
        _ => ImportFormat::Csv,
    };
    let text = String::from_utf8_lossy(rest);
    match parse(format, &text) {
        Ok(parsed) => {
            for row in &parsed.rows {
                assert!(row.line >= 1);
                assert!(gatehouse::domain::Username::parse(row.username.as_str()).is_ok());
            }
        }
        Err(problem) => assert!(!problem.message.is_empty()),
    }
}
