//! Cookie names and attributes. On https the `__Host-` prefix makes the browser refuse the cookie unless it
//! is Secure, host-only and Path=/, so a sibling subdomain cannot plant or overwrite it.

use cookie::{Cookie, SameSite};
use http::HeaderMap;
use http::header::COOKIE;

#[derive(Debug, Clone)]
pub struct CookieNames {
    pub session: &'static str,
    pub csrf: &'static str,
    secure: bool,
}

impl CookieNames {
    pub fn new(https: bool) -> Self {
        if https {
            Self { session: "__Host-gatehouse_session", csrf: "__Host-gatehouse_csrf", secure: true }
        } else {
            Self { session: "gatehouse_session", csrf: "gatehouse_csrf", secure: false }
        }
    }

    pub fn is_gatehouse_cookie(&self, name: &str) -> bool {
        name == self.session || name == self.csrf
    }

    /// A cookie set by Gatehouse: HttpOnly, SameSite=Lax, Path=/, Secure on https; persistent when `max_age` is given.
    pub fn build(&self, name: &'static str, value: String, max_age: Option<time::Duration>) -> Cookie<'static> {
        let mut builder =
            Cookie::build((name, value)).http_only(true).same_site(SameSite::Lax).path("/").secure(self.secure);
        if let Some(age) = max_age {
            builder = builder.max_age(age);
        }
        builder.build()
    }

    /// A cookie that makes the browser forget `name` at once.
    pub fn removal(&self, name: &'static str) -> Cookie<'static> {
        self.build(name, String::new(), Some(time::Duration::ZERO))
    }
}

/// The value of the cookie called `name` if the request carries exactly one; `None` if it carries none or
/// several (one pass over the `Cookie` headers).
pub fn read_single_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = None;
    for (key, value) in cookie_pairs(headers) {
        if key == name {
            if found.is_some() {
                return None;
            }
            found = Some(value);
        }
    }
    found
}

fn cookie_pairs(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .map(|(key, value)| (key, value.trim_matches('"')))
}

/// The value of the first cookie called `name`, in any of the request's `Cookie` headers.
pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    cookie_pairs(headers).find(|(key, _)| *key == name).map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn https_cookies_use_the_host_prefix_and_secure() {
        let names = CookieNames::new(true);
        let cookie = names.build(names.session, "x".into(), None).to_string();
        assert!(cookie.starts_with("__Host-gatehouse_session=x"));
        assert!(
            cookie.contains("Secure")
                && cookie.contains("HttpOnly")
                && cookie.contains("SameSite=Lax")
                && cookie.contains("Path=/")
        );
        assert!(!CookieNames::new(false).build("gatehouse_session", "x".into(), None).to_string().contains("Secure"));
    }

    #[test]
    fn reads_cookies_from_every_header() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; junk; b=2"));
        headers.append(COOKIE, HeaderValue::from_static("gatehouse_session=abc"));
        assert_eq!(read_cookie(&headers, "b"), Some("2"));
        assert_eq!(read_cookie(&headers, "gatehouse_session"), Some("abc"));
        assert_eq!(read_cookie(&headers, "missing"), None);
    }
}
