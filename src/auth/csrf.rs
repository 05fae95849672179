//! Cross-site request forgery defence, two layers deep:
//! 1. Every form carries a token that is an HMAC of a random per-browser cookie (the "signed double-submit
//!    cookie" of OWASP's cheat sheet). A forged form cannot know it, and a planted cookie cannot be paired
//!    with a valid token without the server key.
//! 2. State-changing requests must not be cross-site by `Sec-Fetch-Site`, and an `Origin` header, when sent,
//!    must be this server's origin.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use http::header::{HOST, ORIGIN};
use sha2::Sha256;
use url::Url;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct CsrfGuard {
    key: std::sync::Arc<Vec<u8>>,
}

/// Why a state-changing request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrfFailure {
    CrossSite,
    BadOrigin,
    MissingCookie,
    BadToken,
}

impl CsrfGuard {
    pub fn new(key: Vec<u8>) -> Self {
        Self { key: std::sync::Arc::new(key) }
    }

    /// A fresh value for the CSRF cookie.
    /// A fresh value for the CSRF cookie: a random nonce and the server's HMAC of it, so that a cookie
    /// planted by someone else (a sibling subdomain, the app) is recognised as not ours and replaced.
    pub fn new_cookie_value(&self) -> String {
        let nonce = crate::random::url_token(32);
        let seal = URL_SAFE_NO_PAD.encode(self.seal(&nonce).finalize().into_bytes());
        format!("{nonce}.{seal}")
    }

    /// Whether a CSRF cookie value was minted by this server (see [`CsrfGuard::new_cookie_value`]).
    pub fn is_minted(&self, cookie_value: &str) -> bool {
        let Some((nonce, seal)) = cookie_value.split_once('.') else { return false };
        let Ok(seal) = URL_SAFE_NO_PAD.decode(seal) else { return false };
        self.seal(nonce).verify_slice(&seal).is_ok()
    }

    fn seal(&self, nonce: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC accepts keys of any length");
        mac.update(b"gatehouse-csrf-cookie-v1:");
        mac.update(nonce.as_bytes());
        mac
    }

    /// The form token that matches a CSRF cookie value.
    pub fn token_for(&self, cookie_value: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(cookie_value).finalize().into_bytes())
    }

    /// Checks the submitted token against the cookie in constant time.
    pub fn verify_token(&self, cookie_value: Option<&str>, submitted: &str) -> Result<(), CsrfFailure> {
        let cookie_value = cookie_value.filter(|v| !v.is_empty()).ok_or(CsrfFailure::MissingCookie)?;
        if !self.is_minted(cookie_value) {
            return Err(CsrfFailure::BadToken);
        }
        let submitted = URL_SAFE_NO_PAD.decode(submitted.trim()).map_err(|_| CsrfFailure::BadToken)?;
        self.mac(cookie_value).verify_slice(&submitted).map_err(|_| CsrfFailure::BadToken)
    }

    fn mac(&self, cookie_value: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC accepts keys of any length");
        mac.update(b"gatehouse-csrf-v1:");
        mac.update(cookie_value.as_bytes());
        mac
    }
}

/// Refuses requests a browser marks as cross-site, and `Origin`s other than ours. A request with neither
/// header (curl, old browsers) passes this layer and still needs the token. Fails closed on what it cannot
/// read: a `Sec-Fetch-Site` that is not exactly `same-origin` or `none` (bytes that are not text included;
/// the fuzzer found those read as no header at all), and more than one `Origin`.
pub fn check_origin(headers: &HeaderMap, public_url: &Url) -> Result<(), CsrfFailure> {
    if headers.get_all("sec-fetch-site").iter().any(|site| !matches!(site.as_bytes(), b"same-origin" | b"none")) {
        return Err(CsrfFailure::CrossSite);
    }
    let mut origins = headers.get_all(ORIGIN).iter();
    let Some(origin) = origins.next() else {
        return Ok(());
    };
    if origins.next().is_some() {
        return Err(CsrfFailure::BadOrigin);
    }
    let origin = origin.to_str().map_err(|_| CsrfFailure::BadOrigin)?;
    if origin.eq_ignore_ascii_case(&public_url.origin().ascii_serialization()) {
        return Ok(());
    }
    // The address the browser actually used (e.g. localhost vs 127.0.0.1 when no public_url is set).
    let host = headers.get(HOST).and_then(|v| v.to_str().ok()).ok_or(CsrfFailure::BadOrigin)?;
    // Behind https the page was served over https, so an http:// origin is a downgrade, never ours.
    let origin_host = if public_url.scheme() == "https" {
        origin.strip_prefix("https://")
    } else {
        origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"))
    };
    let same_host = origin_host.is_some_and(|origin_host| origin_host.eq_ignore_ascii_case(host));
    if same_host { Ok(()) } else { Err(CsrfFailure::BadOrigin) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn tokens_match_only_their_cookie() {
        let guard = CsrfGuard::new(vec![7; 32]);
        let cookie_a = guard.new_cookie_value();
        let cookie_b = guard.new_cookie_value();
        let token = guard.token_for(&cookie_a);
        assert_eq!(guard.verify_token(Some(&cookie_a), &token), Ok(()));
        assert_eq!(guard.verify_token(Some(&cookie_b), &token), Err(CsrfFailure::BadToken));
        assert_eq!(guard.verify_token(None, &token), Err(CsrfFailure::MissingCookie));
        assert_eq!(guard.verify_token(Some(&cookie_a), "!!"), Err(CsrfFailure::BadToken));
        let other_key = CsrfGuard::new(vec![8; 32]);
        assert_eq!(other_key.verify_token(Some(&cookie_a), &token), Err(CsrfFailure::BadToken));
    }

    #[test]
    fn planted_cookies_are_not_ours() {
        let guard = CsrfGuard::new(vec![7; 32]);
        let planted = "A".repeat(43);
        assert!(!guard.is_minted(&planted));
        assert!(!guard.is_minted(&format!("{planted}.{planted}")));
        // Even with a token computed for it, a planted cookie does not pass.
        assert_eq!(guard.verify_token(Some(&planted), &guard.token_for(&planted)), Err(CsrfFailure::BadToken));
        assert!(guard.is_minted(&guard.new_cookie_value()));
    }

    #[test]
    fn origin_rules() {
        let public = Url::parse("https://apps.example.com").unwrap();
        let mut headers = HeaderMap::new();
        assert_eq!(check_origin(&headers, &public), Ok(()));
        headers.insert(ORIGIN, HeaderValue::from_static("https://apps.example.com"));
        assert_eq!(check_origin(&headers, &public), Ok(()));
        headers.insert(ORIGIN, HeaderValue::from_static("https://evil.example"));
        headers.insert(HOST, HeaderValue::from_static("apps.example.com"));
        assert_eq!(check_origin(&headers, &public), Err(CsrfFailure::BadOrigin));
        headers.insert(ORIGIN, HeaderValue::from_static("http://apps.example.com"));
        assert_eq!(check_origin(&headers, &public), Err(CsrfFailure::BadOrigin), "scheme downgrade");
        headers.insert(ORIGIN, HeaderValue::from_static("null"));
        assert_eq!(check_origin(&headers, &public), Err(CsrfFailure::BadOrigin));
        headers.remove(ORIGIN);
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert_eq!(check_origin(&headers, &public), Err(CsrfFailure::CrossSite));
    }

    #[test]
    fn what_cannot_be_read_is_refused_not_ignored() {
        let public = Url::parse("https://apps.example.com").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("apps.example.com"));
        // Bytes that are not text (what the fuzzer found): read as no header before.
        headers.insert("sec-fetch-site", HeaderValue::from_bytes(b"cross-site\xff").unwrap());
        assert_eq!(check_origin(&headers, &public), Err(CsrfFailure::CrossSite));
        headers.insert("sec-fetch-site", HeaderValue::from_static("Same-Origin"));
        assert_eq!(check_origin(&headers, &public), Err(CsrfFailure::CrossSite), "exactly as browsers send it");
        // One of two saying cross-site is enough.
        headers.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        headers.append("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert_eq!(check_origin(&headers, &public), Err(CsrfFailure::CrossSite));
        headers.insert("sec-fetch-site", HeaderValue::from_static("none"));
        assert_eq!(check_origin(&headers, &public), Ok(()));
        // Two origins, even if one is ours: which one would a check behind read?
        headers.insert(ORIGIN, HeaderValue::from_static("https://apps.example.com"));
        assert_eq!(check_origin(&headers, &public), Ok(()));
        headers.append(ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert_eq!(check_origin(&headers, &public), Err(CsrfFailure::BadOrigin));
        headers.remove(ORIGIN);
        headers.insert(ORIGIN, HeaderValue::from_bytes(b"https://apps.example.com\xff").unwrap());
        assert_eq!(check_origin(&headers, &public), Err(CsrfFailure::BadOrigin));
    }
}
