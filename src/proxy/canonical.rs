//! Stage 0 of every request, Gatehouse's own pages included: the request target and `Host` are replaced by
//! their canonical form ([`crate::domain::request_target`]) before anything looks at them, or the request is
//! refused. Everything after this (the split between Gatehouse's pages and the app, the access rules, the
//! forwarded request) sees only the canonical form, so what is judged is exactly what is forwarded.

use axum::body::Body;
use http::header::{HOST, HeaderValue};
use http::uri::{PathAndQuery, Uri};
use http::{Method, Request, StatusCode, Version};

use crate::domain::request_target::{TargetError, canonical_host, canonical_path, judged_path};

/// The canonical `Host` of a request, as forwarded.
#[derive(Debug, Clone)]
pub struct CanonicalHost {
    value: HeaderValue,
    name_len: usize,
}

impl CanonicalHost {
    /// `name[:port]`.
    pub fn as_str(&self) -> &str {
        // The value was made from a `str`, so it is visible ASCII.
        self.value.to_str().unwrap_or_default()
    }

    /// The host name without its port, as `[[access]]` host rules compare it.
    pub fn name(&self) -> &str {
        self.as_str().get(..self.name_len).unwrap_or_default()
    }

    pub fn header_value(&self) -> &HeaderValue {
        &self.value
    }
}

/// What [`canonicalise`] learnt about a request it accepted.
#[derive(Debug, Clone)]
pub struct Target {
    /// `None` only for an HTTP/1.0 request without `Host`.
    pub host: Option<CanonicalHost>,
}

impl Target {
    pub fn host_name(&self) -> Option<&str> {
        self.host.as_ref().map(CanonicalHost::name)
    }
}

/// Why a request was refused before anything else looked at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `CONNECT`: Gatehouse is not a forward proxy.
    Method,
    Target(TargetError),
}

impl Refusal {
    pub fn status(self) -> StatusCode {
        match self {
            Refusal::Method => StatusCode::METHOD_NOT_ALLOWED,
            Refusal::Target(_) => StatusCode::BAD_REQUEST,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Refusal::Method => "Gatehouse does not tunnel CONNECT requests.",
            Refusal::Target(error) => error.message(),
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Refusal::Method => "connect",
            Refusal::Target(error) => error.code(),
        }
    }
}

impl From<TargetError> for Refusal {
    fn from(error: TargetError) -> Self {
        Refusal::Target(error)
    }
}

/// Rewrites `request` into its canonical form, or says why it has none.
pub fn canonicalise(request: &mut Request<Body>) -> Result<Target, Refusal> {
    if request.method() == Method::CONNECT {
        return Err(Refusal::Method);
    }
    let host = canonical_request_host(request)?;
    let uri = request.uri();
    let path = canonical_path(uri.path())?;
    // Origin-form from here on: an absolute target's authority has been checked against `Host` above.
    if path != uri.path() || uri.scheme().is_some() || uri.authority().is_some() {
        let text = match uri.query() {
            Some(query) => format!("{path}?{query}"),
            None => path.into_owned(),
        };
        let path_and_query = PathAndQuery::try_from(text).map_err(|_| TargetError::NotAPath)?;
        *request.uri_mut() = Uri::from(path_and_query);
    }
    if let Some(host) = &host {
        let headers = request.headers_mut();
        if headers.get(HOST) != Some(&host.value) {
            headers.insert(HOST, host.value.clone());
        }
    }
    Ok(Target { host })
}

/// The one host of the request: its `Host` header, which must agree with an absolute target's authority.
fn canonical_request_host(request: &Request<Body>) -> Result<Option<CanonicalHost>, TargetError> {
    let mut headers = request.headers().get_all(HOST).iter();
    let header = headers.next();
    if headers.next().is_some() {
        return Err(TargetError::ConflictingHost);
    }
    let from_header = header
        .map(|value| {
            let text = value.to_str().map_err(|_| TargetError::MalformedHost)?;
            let form = canonical_host(text)?;
            // Already canonical (nearly always): the header value itself, a reference count, no copy.
            let canonical = match &form.text {
                std::borrow::Cow::Borrowed(_) => value.clone(),
                std::borrow::Cow::Owned(text) => HeaderValue::from_str(text).map_err(|_| TargetError::MalformedHost)?,
            };
            Ok(CanonicalHost { value: canonical, name_len: form.name_len })
        })
        .transpose()?;
    let from_target = request
        .uri()
        .authority()
        .map(|authority| {
            if authority.as_str().contains('@') {
                return Err(TargetError::MalformedHost);
            }
            canonical_host_value(authority.as_str())
        })
        .transpose()?;
    match (from_header, from_target) {
        (Some(header), Some(target)) if header.value != target.value => Err(TargetError::ConflictingHost),
        (Some(host), _) | (None, Some(host)) => Ok(Some(host)),
        (None, None) if request.version() <= Version::HTTP_10 => Ok(None),
        (None, None) => Err(TargetError::MissingHost),
    }
}

fn canonical_host_value(raw: &str) -> Result<CanonicalHost, TargetError> {
    let form = canonical_host(raw)?;
    let value = HeaderValue::from_str(&form.text).map_err(|_| TargetError::MalformedHost)?;
    Ok(CanonicalHost { value, name_len: form.name_len })
}

/// The path access rules judge for a canonicalised request.
pub fn judged_request_path(request: &Request<Body>) -> std::borrow::Cow<'_, str> {
    judged_path(request.uri().path())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, uri: &str, hosts: &[&str], version: Version) -> Request<Body> {
        let mut builder = Request::builder().method(method).uri(uri).version(version);
        for host in hosts {
            builder = builder.header(HOST, *host);
        }
        builder.body(Body::empty()).unwrap()
    }

    fn get(uri: &str, hosts: &[&str]) -> Request<Body> {
        request(Method::GET, uri, hosts, Version::HTTP_11)
    }

    #[test]
    fn the_request_is_rewritten_into_its_canonical_form() {
        let mut req = get("//Admin/%61b/?x=%2e%2e/&y", &["Ops.Example.COM.:08443"]);
        let target = canonicalise(&mut req).unwrap();
        assert_eq!(req.uri(), "/Admin/ab/?x=%2e%2e/&y");
        assert_eq!(req.headers()[HOST], "ops.example.com:8443");
        assert_eq!(target.host_name(), Some("ops.example.com"));
        assert_eq!(judged_request_path(&req), "/Admin/ab/");
    }

    #[test]
    fn an_absolute_target_must_name_the_same_host() {
        let mut req = get("http://ops.example.com/x", &["OPS.example.com"]);
        canonicalise(&mut req).unwrap();
        assert_eq!(req.uri(), "/x");
        let mut req = get("http://ops.example.com/x", &["apps.example.com"]);
        assert_eq!(canonicalise(&mut req).unwrap_err(), Refusal::Target(TargetError::ConflictingHost));
        let mut req = get("http://ops.example.com/x", &[]);
        canonicalise(&mut req).unwrap();
        assert_eq!(req.headers()[HOST], "ops.example.com");
        let mut req = get("http://user@ops.example.com/x", &["ops.example.com"]);
        assert_eq!(canonicalise(&mut req).unwrap_err(), Refusal::Target(TargetError::MalformedHost));
    }

    #[test]
    fn host_headers_must_be_one_and_well_formed() {
        let mut req = get("/", &["a.example.com", "b.example.com"]);
        assert_eq!(canonicalise(&mut req).unwrap_err(), Refusal::Target(TargetError::ConflictingHost));
        for bad in ["ops.example.com:abc", "ops.example.com:1:2", "ops.example.com:+1", "ops.example.com.:x"] {
            let mut req = get("/", &[bad]);
            assert_eq!(canonicalise(&mut req).unwrap_err(), Refusal::Target(TargetError::MalformedHost), "{bad}");
        }
        let mut req = get("/", &[]);
        assert_eq!(canonicalise(&mut req).unwrap_err(), Refusal::Target(TargetError::MissingHost));
        let mut req = request(Method::GET, "/", &[], Version::HTTP_10);
        assert!(canonicalise(&mut req).unwrap().host.is_none(), "HTTP/1.0 may go without Host");
    }

    #[test]
    fn connect_and_non_paths_are_refused() {
        let mut req = request(Method::CONNECT, "ops.example.com:443", &["ops.example.com:443"], Version::HTTP_11);
        assert_eq!(canonicalise(&mut req).unwrap_err(), Refusal::Method);
        let mut req = request(Method::OPTIONS, "*", &["ops.example.com"], Version::HTTP_11);
        assert_eq!(canonicalise(&mut req).unwrap_err(), Refusal::Target(TargetError::NotAPath));
    }

    #[test]
    fn canonical_requests_are_left_untouched() {
        let mut req = get("/_stcore/health?x=1", &["127.0.0.1:8501"]);
        let before = req.uri().clone();
        canonicalise(&mut req).unwrap();
        assert_eq!(req.uri(), &before);
        assert_eq!(req.headers()[HOST], "127.0.0.1:8501");
    }
}
