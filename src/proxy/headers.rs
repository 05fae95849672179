//! Header rewriting for proxied requests: identity headers stripped from the client and injected from the
//! session, hop-by-hop headers dropped, Gatehouse's own cookies kept away from the app.
//!
//! `http::HeaderName` is always lower case, so "X-GATEHOUSE-user" and "x-gatehouse-user" are the same name
//! here: stripping cannot be dodged by letter case.

use http::HeaderMap;
use http::header::{CONNECTION, COOKIE, HeaderName, HeaderValue};

use crate::auth::{CookieNames, IdentityValues};

/// Identity headers Gatehouse sends as aliases (`upstream.header_aliases`).
const IDENTITY_HEADERS: &[&str] = &[
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-groups",
    "x-forwarded-preferred-username",
    "x-auth-name",
    "remote-user",
    "remote-email",
    "remote-groups",
    "remote-name",
];
const GATEHOUSE_PREFIX: &str = "x-gatehouse-";

/// Identity that other gateways and front ends send, by prefix. An app moved behind Gatehouse from one of
/// them may still trust these, so a client must not be able to send them: oauth2-proxy (`X-Auth-Request-*`,
/// `X-Forwarded-*` claims), Authelia and others (`Remote-*`, `X-Remote-*`), AWS ALB (`X-Amzn-Oidc-*`), Azure
/// App Service (`X-Ms-Client-Principal*`), Google IAP (`X-Goog-Authenticated-User-*`, `X-Goog-Iap-*`),
/// Cloudflare Access (`Cf-Access-*`), Pomerium (`X-Pomerium-*`), Tailscale (`Tailscale-*`), Grafana's auth
/// proxy (`X-Webauth-*`), authentik (`X-Authentik-*`), Vouch (`X-Vouch-*`), and client certificates
/// forwarded by TLS terminators (`X-Ssl-Client-*`, `Ssl-Client-*`, `X-Client-Cert*`).
const FOREIGN_IDENTITY_PREFIXES: &[&str] = &[
    "x-auth-request-",
    "remote-",
    "x-remote-",
    "x-amzn-oidc-",
    "x-ms-client-principal",
    "x-goog-authenticated-user-",
    "x-goog-iap-",
    "cf-access-",
    "x-pomerium-",
    "tailscale-",
    "x-webauth-",
    "x-authentik-",
    "x-vouch-",
    "x-ssl-client-",
    "ssl-client-",
    "x-client-cert",
    "x-client-dn",
    "x-client-verify",
    // Kong's consumer and credential headers.
    "x-consumer-",
    "x-credential-",
];

/// Identity that other gateways send under names of their own.
const FOREIGN_IDENTITY_NAMES: &[&str] = &[
    "x-user",
    "x-email",
    "x-username",
    "x-user-email",
    "x-user-id",
    "x-user-name",
    "x-auth-user",
    "x-auth-email",
    "x-auth-username",
    "x-auth-groups",
    "x-authenticated-user",
    "x-authenticated-email",
    "x-authenticated-groups",
    "x-authenticated-userid",
    "x-proxy-user",
    "x-proxy-roles",
    "x-anonymous-consumer",
    "x-userinfo",
    "x-id-token",
];

/// `X-Forwarded-*` names Gatehouse rewrites itself (after reading a trusted proxy's values); every other
/// `X-Forwarded-*` header is a client's claim (`-User`, `-Email`, `-Access-Token`, `-Client-Cert`, ...).
const FORWARDED_SET_BY_GATEHOUSE: &[&str] = &["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"];

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), never forwarded as they are.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Extra identity header sets an operator can switch on for apps written against other gateways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderAliasSet {
    /// `X-Forwarded-User`, `-Email`, `-Groups`, `-Preferred-Username`.
    OAuth2Proxy,
    /// `Remote-User`, `-Email`, `-Groups`, `-Name`.
    Authelia,
    /// `X-Auth-Name`.
    Ploomber,
}

impl HeaderAliasSet {
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "oauth2-proxy" => Ok(Self::OAuth2Proxy),
            "authelia" => Ok(Self::Authelia),
            "ploomber" => Ok(Self::Ploomber),
            other => {
                Err(format!("'{other}' is not a header alias set; use \"oauth2-proxy\", \"authelia\" or \"ploomber\""))
            }
        }
    }
}

/// Headers that carry claims about the client's address or the original URL. Gatehouse sets the
/// `X-Forwarded-*` trio itself; these others would let a client tell the app a different story.
/// Claims about the client's address, the original host, scheme, method or path, which an app or framework
/// behind a proxy might believe: `X-Client-IP` and its siblings, `X-Script-Name` (prepended to the path by
/// Flask's well-known proxy recipe), host and method overrides, Envoy's internal headers.
const CLIENT_CLAIMS: &[&str] = &[
    "forwarded",
    "x-real-ip",
    "x-rewrite-url",
    "x-request-id",
    "x-client-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-cluster-client-ip",
    "x-script-name",
    "x-scheme",
    "x-host",
    "x-http-host-override",
    "front-end-https",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];
const CLIENT_CLAIM_PREFIXES: &[&str] = &["x-original-", "x-envoy-"];

/// Whether a client's header must not reach the app. Any name with a character other than a letter, digit or
/// `-` goes too (nginx drops `_` by default): WSGI/CGI servers fold `X_Gatehouse_User` and `X-Gatehouse-User`
/// into one variable, and some fold every other punctuation mark (`X.Gatehouse.User`) the same way, so such
/// names would otherwise smuggle identity past the lists above (the oauth2-proxy CVE-2025-64484 class).
pub fn is_identity_header(name: &HeaderName) -> bool {
    let name = name.as_str();
    let prefixed = |prefixes: &[&str]| prefixes.iter().any(|prefix| name.starts_with(prefix));
    !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || name.starts_with(GATEHOUSE_PREFIX)
        || IDENTITY_HEADERS.contains(&name)
        || FOREIGN_IDENTITY_NAMES.contains(&name)
        || prefixed(FOREIGN_IDENTITY_PREFIXES)
        || (name.starts_with("x-forwarded-") && !FORWARDED_SET_BY_GATEHOUSE.contains(&name))
        || CLIENT_CLAIMS.contains(&name)
        || prefixed(CLIENT_CLAIM_PREFIXES)
}

/// Headers a client's `Connection` header cannot have removed: those that Gatehouse judged (`Host`),
/// relies on for the session and CSRF checks, sets itself, or that the app needs to check the request
/// (`Origin`, Streamlit's XSRF cookie and `Sec-WebSocket-*`), and the message's own framing and type.
fn is_protected_from_connection(name: &str) -> bool {
    matches!(
        name,
        "host"
            | "cookie"
            | "origin"
            | "referer"
            | "authorization"
            | "content-length"
            | "content-type"
            | "content-encoding"
    ) || name.starts_with("sec-")
        || name.starts_with("x-forwarded-")
        || name.starts_with(GATEHOUSE_PREFIX)
        || name == "x-request-id"
        || IDENTITY_HEADERS.contains(&name)
}

/// Removes every identity header a client sent, in any letter case.
pub fn strip_identity_headers(headers: &mut HeaderMap) {
    let doomed: Vec<HeaderName> = headers.keys().filter(|name| is_identity_header(name)).cloned().collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// Header names that are secret and new for every `gatehouse run`, from which Streamlit fills `st.user`
/// (`server.trustedUserHeaders`, given to Streamlit through its environment, which other users cannot read,
/// never on its command line, which they can). Streamlit trusts those headers blindly; should another local
/// user ever reach the app directly (isolation off or unavailable), they cannot name them. They start with
/// `x-gatehouse-`, so a client's copies are stripped like every other.
#[derive(Debug, Clone)]
pub struct PrivateIdentityNames {
    user: HeaderName,
    email: HeaderName,
    name: HeaderName,
    roles: HeaderName,
    logged_in: HeaderName,
}

impl PrivateIdentityNames {
    pub fn generate() -> Self {
        let secret = hex::encode(crate::random::bytes(16));
        let name = |key: &str| {
            HeaderName::from_bytes(format!("x-gatehouse-{secret}-{key}").as_bytes())
                .expect("hex digits and dashes make a header name")
        };
        Self {
            user: name("user"),
            email: name("email"),
            name: name("name"),
            roles: name("roles"),
            logged_in: name("logged-in"),
        }
    }

    /// The `server.trustedUserHeaders` value mapping these names to `st.user` keys.
    pub fn streamlit_mapping(&self) -> String {
        serde_json::json!({
            self.user.as_str(): "username",
            self.email.as_str(): "email",
            self.name.as_str(): "name",
            self.roles.as_str(): "roles",
            self.logged_in.as_str(): "is_logged_in",
        })
        .to_string()
    }
}

/// Adds the signed-in user's identity (after [`strip_identity_headers`]), and under the run's private
/// names when there are some.
pub fn inject_identity(
    headers: &mut HeaderMap,
    identity: &IdentityValues,
    aliases: &[HeaderAliasSet],
    private: Option<&PrivateIdentityNames>,
) {
    if let Some(private) = private {
        for (name, value) in [
            (&private.user, &identity.username),
            (&private.email, &identity.email),
            (&private.name, &identity.name),
            (&private.roles, &identity.roles),
        ] {
            if let Some(value) = value {
                headers.insert(name.clone(), value.clone());
            }
        }
        headers.insert(private.logged_in.clone(), HeaderValue::from_static("true"));
    }
    let mut set = |name: &'static str, value: &Option<HeaderValue>| {
        if let Some(value) = value {
            headers.insert(HeaderName::from_static(name), value.clone());
        }
    };
    set("x-gatehouse-user", &identity.username);
    set("x-gatehouse-email", &identity.email);
    set("x-gatehouse-name", &identity.name);
    set("x-gatehouse-roles", &identity.roles);
    // Lets Streamlit's `st.user.is_logged_in` work for apps written for `st.login()`.
    set("x-gatehouse-logged-in", &Some(HeaderValue::from_static("true")));
    set("x-gatehouse-assertion", &identity.assertion);
    for alias in aliases {
        match alias {
            HeaderAliasSet::OAuth2Proxy => {
                set("x-forwarded-user", &identity.username);
                set("x-forwarded-email", &identity.email);
                set("x-forwarded-groups", &identity.roles);
                set("x-forwarded-preferred-username", &identity.username);
            }
            HeaderAliasSet::Authelia => {
                set("remote-user", &identity.username);
                set("remote-email", &identity.email);
                set("remote-groups", &identity.roles);
                set("remote-name", &identity.name);
            }
            HeaderAliasSet::Ploomber => set("x-auth-name", &identity.username),
        }
    }
}

/// Removes hop-by-hop headers, including any the `Connection` header names (except those it must not be
/// able to remove, see [`is_protected_from_connection`]). With `keep_upgrade`, the handshake's
/// `Connection: upgrade` / `Upgrade: websocket` pair is sent, whatever else the client listed.
///
/// One pass over the names present, against the `Connection` tokens read once.
pub fn remove_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let kept_for_upgrade = |name: &str| keep_upgrade && matches!(name, "connection" | "upgrade");
    // The extra names `Connection` lists, read once. Browsers send `keep-alive`, a name that goes anyway, so
    // this usually stays empty and allocates nothing.
    let goes_anyway =
        |token: &str| token.eq_ignore_ascii_case("close") || HOP_BY_HOP.iter().any(|h| token.eq_ignore_ascii_case(h));
    let named: Vec<&str> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|token| !token.is_empty() && !goes_anyway(token))
        .collect();
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            let name = name.as_str();
            !kept_for_upgrade(name)
                && (HOP_BY_HOP.contains(&name)
                    || (named.iter().any(|token| token.eq_ignore_ascii_case(name))
                        && !is_protected_from_connection(name)))
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
    if keep_upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        // Only WebSocket is tunnelled: `Upgrade: h2c, websocket` must not let the app pick h2c.
        headers.insert(http::header::UPGRADE, HeaderValue::from_static("websocket"));
    }
}

/// Drops Gatehouse's own cookies from the `Cookie` header so the app never sees a session token. The header
/// is left as it is when it has none, and removed when it has nothing else.
pub fn remove_gatehouse_cookies(headers: &mut HeaderMap, names: &CookieNames) {
    let is_ours = |pair: &str| names.is_gatehouse_cookie(pair.split_once('=').map_or(pair, |(k, _)| k));
    let pairs = || {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
    };
    let (mut total, mut ours) = (0, 0);
    for pair in pairs() {
        total += 1;
        ours += usize::from(is_ours(pair));
    }
    if ours == 0 && headers.get_all(COOKIE).iter().all(|v| v.to_str().is_ok()) {
        return;
    }
    let kept =
        if ours < total { pairs().filter(|pair| !is_ours(pair)).collect::<Vec<_>>().join("; ") } else { String::new() };
    headers.remove(COOKIE);
    if !kept.is_empty()
        && let Ok(value) = HeaderValue::from_str(&kept)
    {
        headers.insert(COOKIE, value);
    }
}

/// Drops `Set-Cookie` headers from the app that would set Gatehouse's own cookies: the app must not be able
/// to sign a browser in or out of Gatehouse, or plant a CSRF cookie. A nameless cookie goes too
/// (`Set-Cookie: =gatehouse_session=x`, or one without `=`): browsers send it back as its bare value, which
/// reads exactly like `gatehouse_session=x` in the `Cookie` header.
pub fn remove_gatehouse_set_cookies(headers: &mut HeaderMap, names: &CookieNames) {
    let set_cookie = http::header::SET_COOKIE;
    let is_ours = |value: &HeaderValue| {
        let text = String::from_utf8_lossy(value.as_bytes());
        let pair = text.split(';').next().unwrap_or_default();
        match pair.split_once('=') {
            Some((name, _)) => {
                let name = name.trim();
                name.is_empty() || names.is_gatehouse_cookie(name)
            }
            None => true,
        }
    };
    if !headers.get_all(&set_cookie).iter().any(is_ours) {
        return;
    }
    let kept: Vec<HeaderValue> = headers.get_all(&set_cookie).iter().filter(|value| !is_ours(value)).cloned().collect();
    headers.remove(&set_cookie);
    for value in kept {
        headers.append(&set_cookie, value);
    }
}

/// Drops the `"cookies"` and `"*"` directives of an app's `Clear-Site-Data`: they would clear Gatehouse's
/// session cookie too, signing the browser out of Gatehouse by the app's say. The app's other directives
/// (`"cache"`, `"storage"`, ...) stay; a header left with none goes.
pub fn limit_clear_site_data(headers: &mut HeaderMap) {
    const CLEAR_SITE_DATA: HeaderName = HeaderName::from_static("clear-site-data");
    let name = CLEAR_SITE_DATA;
    let Some(value) = headers.get(&name) else { return };
    let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
    let kept: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|directive| !directive.is_empty())
        .filter(|directive| {
            let bare = directive.trim_matches('"').to_ascii_lowercase();
            bare != "cookies" && bare != "*"
        })
        .collect();
    headers.remove(&name);
    if !kept.is_empty()
        && let Ok(value) = HeaderValue::from_str(&kept.join(", "))
    {
        headers.insert(name, value);
    }
}

/// Whether the request asks for a WebSocket upgrade.
pub fn is_upgrade_request(headers: &HeaderMap) -> bool {
    let connection_upgrade = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")));
    connection_upgrade && is_websocket_token(headers.get(http::header::UPGRADE))
}

/// Only WebSocket upgrades are tunnelled; any other `Upgrade` (h2c, TLS, ...) is dropped as the hop-by-hop
/// header it is, and the request is proxied as an ordinary one.
pub fn is_websocket_token(value: Option<&HeaderValue>) -> bool {
    value
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("websocket")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_identity_headers_in_any_case() {
        let mut headers = HeaderMap::new();
        for name in [
            "X-Gatehouse-User",
            "x-GATEHOUSE-roles",
            "X-Gatehouse-Anything",
            "Remote-User",
            "X-Forwarded-Email",
            "X-Auth-Name",
            "X_Gatehouse_Roles",
            "Remote_User",
            "X_Forwarded_For",
            "Forwarded",
            "X-Real-IP",
            "X-Auth-Request-User",
            "X-Auth-Request-Email",
            "X-Remote-User",
            "X-User",
            "X-Email",
            "X-Authenticated-User",
            "Remote-Username",
            "X-Forwarded-Access-Token",
            "X-Forwarded-Client-Cert",
            "X-Amzn-Oidc-Identity",
            "X-Goog-Authenticated-User-Email",
            "Cf-Access-Authenticated-User-Email",
            "X-Ms-Client-Principal-Name",
            "Tailscale-User-Login",
            "X-WEBAUTH-USER",
            "X-Original-URI",
            "X-Original-Method",
            "X-Request-Id",
            "X.Gatehouse.User",
            "X-Client-IP",
            "True-Client-IP",
            "X-Script-Name",
            "X-Consumer-Username",
            "X-Userinfo",
            "X-Envoy-Original-Path",
            "X-HTTP-Method-Override",
        ] {
            headers.insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_static("mallory"));
        }
        for kept in ["x-other", "x-auth-token", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-api-key"]
        {
            headers.insert(HeaderName::from_static(kept), HeaderValue::from_static("kept"));
        }
        strip_identity_headers(&mut headers);
        assert_eq!(headers.len(), 6, "{headers:?}");
    }

    #[test]
    fn the_app_cannot_clear_gatehouse_cookies() {
        let mut headers = HeaderMap::new();
        headers.insert("clear-site-data", HeaderValue::from_static("\"cache\", \"cookies\", \"storage\""));
        limit_clear_site_data(&mut headers);
        assert_eq!(headers["clear-site-data"], "\"cache\", \"storage\"");
        headers.insert("clear-site-data", HeaderValue::from_static("\"*\""));
        limit_clear_site_data(&mut headers);
        assert!(headers.get("clear-site-data").is_none());
        headers.insert("clear-site-data", HeaderValue::from_static("\"COOKIES\""));
        limit_clear_site_data(&mut headers);
        assert!(headers.get("clear-site-data").is_none());
    }

    #[test]
    fn private_names_are_new_every_run_and_carry_the_identity_too() {
        let (first, second) = (PrivateIdentityNames::generate(), PrivateIdentityNames::generate());
        assert_ne!(first.user, second.user);
        assert!(first.user.as_str().starts_with(GATEHOUSE_PREFIX) && is_identity_header(&first.user));
        let mapping: serde_json::Value = serde_json::from_str(&first.streamlit_mapping()).unwrap();
        assert_eq!(mapping[first.user.as_str()], "username");
        assert_eq!(mapping[first.logged_in.as_str()], "is_logged_in");
        let identity = IdentityValues {
            username: Some(HeaderValue::from_static("alice")),
            email: Some(HeaderValue::from_static("")),
            name: Some(HeaderValue::from_static("Alice")),
            roles: Some(HeaderValue::from_static("admin")),
            assertion: None,
        };
        let mut headers = HeaderMap::new();
        inject_identity(&mut headers, &identity, &[], Some(&first));
        assert_eq!(headers[&first.user], "alice");
        assert_eq!(headers[&first.roles], "admin");
        assert_eq!(headers["x-gatehouse-user"], "alice");
        assert!(headers.get(&second.user).is_none());
    }

    #[test]
    fn hop_by_hop_headers_go_including_named_ones() {
        let mut headers = HeaderMap::new();
        headers.insert(CONNECTION, HeaderValue::from_static("keep-alive, x-secret-hop"));
        headers.insert("x-secret-hop", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("te", HeaderValue::from_static("trailers"));
        headers.insert("x-end-to-end", HeaderValue::from_static("1"));
        remove_hop_by_hop(&mut headers, false);
        assert_eq!(headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(), vec!["x-end-to-end"]);
    }

    #[test]
    fn gatehouse_cookies_never_reach_the_app() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("_streamlit_xsrf=abc; gatehouse_session=secret; gatehouse_csrf=x; theme=dark"),
        );
        remove_gatehouse_cookies(&mut headers, &CookieNames::new(false));
        assert_eq!(headers.get(COOKIE).unwrap(), "_streamlit_xsrf=abc; theme=dark");
    }

    #[test]
    fn a_cookie_header_without_gatehouse_cookies_is_left_alone_and_one_with_only_them_goes() {
        let names = CookieNames::new(false);
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_static("theme=dark;lang=en"));
        remove_gatehouse_cookies(&mut headers, &names);
        assert_eq!(headers.get(COOKIE).unwrap(), "theme=dark;lang=en", "untouched, byte for byte");

        headers.insert(COOKIE, HeaderValue::from_static("gatehouse_session=secret"));
        headers.append(COOKIE, HeaderValue::from_static("gatehouse_csrf=x"));
        remove_gatehouse_cookies(&mut headers, &names);
        assert!(headers.get(COOKIE).is_none());

        headers.insert(COOKIE, HeaderValue::from_static("a=1"));
        headers.append(COOKIE, HeaderValue::from_static("gatehouse_session=secret; b=2"));
        remove_gatehouse_cookies(&mut headers, &names);
        assert_eq!(headers.get_all(COOKIE).iter().collect::<Vec<_>>(), vec!["a=1; b=2"]);
    }

    #[test]
    fn connection_cannot_remove_what_gatehouse_judged_or_relies_on() {
        let mut headers = HeaderMap::new();
        headers.insert(CONNECTION, HeaderValue::from_static("host, cookie, origin, sec-websocket-protocol, x-hop, X-Gatehouse-User, content-length, x-forwarded-for, x-request-id"));
        for name in [
            "host",
            "cookie",
            "origin",
            "sec-websocket-protocol",
            "x-hop",
            "content-length",
            "x-forwarded-for",
            "x-request-id",
        ] {
            headers.insert(HeaderName::from_static(name), HeaderValue::from_static("1"));
        }
        remove_hop_by_hop(&mut headers, false);
        let mut left: Vec<_> = headers.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        let kept =
            ["content-length", "cookie", "host", "origin", "sec-websocket-protocol", "x-forwarded-for", "x-request-id"];
        assert_eq!(left, kept);
    }

    #[test]
    fn a_websocket_handshake_asks_for_websocket_only() {
        let mut headers = HeaderMap::new();
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade, HTTP2-Settings"));
        headers.insert(http::header::UPGRADE, HeaderValue::from_static("h2c, websocket"));
        headers.insert("http2-settings", HeaderValue::from_static("AAMAAABkAAQAAP__"));
        remove_hop_by_hop(&mut headers, true);
        assert_eq!(headers.get(http::header::UPGRADE).unwrap(), "websocket");
        assert_eq!(headers.get(CONNECTION).unwrap(), "upgrade");
        assert!(headers.get("http2-settings").is_none());
    }

    #[test]
    fn headers_named_by_connection_go_in_any_case_and_upgrade_survives_for_websockets() {
        let mut headers = HeaderMap::new();
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade, X-Hop"));
        headers.insert("x-hop", HeaderValue::from_static("1"));
        headers.insert(http::header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        remove_hop_by_hop(&mut headers, true);
        assert_eq!(headers.get(CONNECTION).unwrap(), "upgrade");
        assert_eq!(headers.get(http::header::UPGRADE).unwrap(), "websocket");
        assert!(headers.get("x-hop").is_none() && headers.get("keep-alive").is_none());
    }

    #[test]
    fn only_the_apps_attempts_to_set_gatehouse_cookies_are_dropped() {
        let names = CookieNames::new(false);
        let mut headers = HeaderMap::new();
        headers.append(http::header::SET_COOKIE, HeaderValue::from_static("theme=dark; Path=/"));
        headers.append(http::header::SET_COOKIE, HeaderValue::from_static("gatehouse_session=planted; Path=/"));
        headers.append(http::header::SET_COOKIE, HeaderValue::from_static("lang=en"));
        for nameless in ["=gatehouse_session=planted; Path=/", " =x", "gatehouse_session", "gatehouse_csrf; Path=/"] {
            headers.append(http::header::SET_COOKIE, HeaderValue::from_static(nameless));
        }
        headers.append(http::header::SET_COOKIE, HeaderValue::from_static(" gatehouse_session =x"));
        remove_gatehouse_set_cookies(&mut headers, &names);
        let kept: Vec<_> = headers.get_all(http::header::SET_COOKIE).iter().collect();
        assert_eq!(kept, vec!["theme=dark; Path=/", "lang=en"]);
    }
}
