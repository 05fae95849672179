//! The one canonical form of a request's host and path. What Gatehouse judges must be exactly what it
//! forwards: access rules are only as good as the agreement between Gatehouse and the app about which
//! resource a request names, and apps read requests in different ways. Some routers percent-decode the
//! path (Starlette, FastAPI), some match the raw text (many Node routers), some ignore letter case
//! (Express by default), some cut `;parameters` off path segments (Java servers), some cut anything after a
//! `:` off the `Host`. So Gatehouse refuses what different readers could read differently, rewrites the rest
//! into one canonical form, and both judges and forwards that form:
//!
//! - **Host**: `name[:port]` or `[v6-address][:port]`. The name is lower-cased and loses a trailing dot;
//!   the port is digits only (1-65535) and loses leading zeros; an empty port goes. Everything else is
//!   refused: `:abc`, `:1:2`, `:+1`, user info, percent-escapes, spaces, empty labels, IPv6 zone ids.
//! - **Path**: starts with `/`. Percent-escapes of unreserved characters (letters, digits, `-._~`) are
//!   decoded, other escapes get upper-case hex, characters that must be escaped are escaped, and repeated
//!   slashes are merged (as nginx does). Refused: dot segments (`.` and `..`, also escaped and with
//!   `;parameters`), an escaped `/`, `\`, `?` or `#`, a backslash, control characters, escapes that do not decode to
//!   UTF-8 (`%ff`, the overlong `%c0%ae`), malformed escapes, and escapes of escapes (`%252e`), which an
//!   app that decodes twice would read as something else.
//!
//! The path that rules judge is the canonical path percent-decoded; since no escape in a canonical path
//! stands for `/` or a dot segment, decoding it never moves a segment boundary, so an app that routes on
//! the decoded path and one that routes on the raw text see the same segments.
//!
//! Pure functions, no HTTP types: the request-level step that applies them is `proxy::canonical`.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::Ipv6Addr;

/// Why a request's host or path has no canonical form. Each is answered 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetError {
    /// Several `Host` headers, or a `Host` that disagrees with an absolute request target.
    ConflictingHost,
    /// An HTTP/1.1 request without `Host`.
    MissingHost,
    /// A `Host` that is not `name[:port]` or `[v6]:port`.
    MalformedHost,
    /// A request target that is not a path (`*`, an authority), or a path not starting with `/`.
    NotAPath,
    /// `%` not followed by two hex digits.
    MalformedEscape,
    /// An escaped `/`, `\`, `?` or `#`, or a literal backslash: a boundary to some apps and not to others.
    AmbiguousSeparator,
    /// A `.` or `..` segment, literal or escaped.
    DotSegment,
    /// A control character, literal or escaped.
    ControlCharacter,
    /// Escapes that do not decode to UTF-8.
    NotUtf8,
    /// An escaped escape (`%25` followed by two hex digits).
    DoubleEscape,
    /// Forward-auth: `X-Original-URI` and `X-Forwarded-Uri` name different requests.
    ConflictingTarget,
    /// A host or path that has a canonical form but is not in it, where it cannot be rewritten (forward-auth:
    /// the front proxy forwards the request as it is).
    NotCanonical,
}

impl TargetError {
    /// A sentence for the person (or program) whose request was refused.
    pub fn message(self) -> &'static str {
        match self {
            TargetError::ConflictingHost => "The request names more than one host.",
            TargetError::MissingHost => "The request has no Host header.",
            TargetError::MalformedHost => "The Host header is not a host name with an optional port.",
            TargetError::NotAPath => "The request target is not a path.",
            TargetError::MalformedEscape => "The address contains a malformed percent-escape.",
            TargetError::AmbiguousSeparator => {
                "The address contains an encoded slash, question mark or number sign, or a backslash."
            }
            TargetError::DotSegment => "The address contains a '.' or '..' segment.",
            TargetError::ControlCharacter => "The address contains a control character.",
            TargetError::NotUtf8 => "The address contains percent-escapes that are not UTF-8.",
            TargetError::DoubleEscape => "The address contains an escaped percent-escape.",
            TargetError::ConflictingTarget => "X-Original-URI and X-Forwarded-Uri name different requests.",
            TargetError::NotCanonical => {
                "The address is not in canonical form (repeated slashes, escaped letters, capitals in the host)."
            }
        }
    }

    /// A stable name for logs.
    pub fn code(self) -> &'static str {
        match self {
            TargetError::ConflictingHost => "conflicting_host",
            TargetError::MissingHost => "missing_host",
            TargetError::MalformedHost => "malformed_host",
            TargetError::NotAPath => "not_a_path",
            TargetError::MalformedEscape => "malformed_escape",
            TargetError::AmbiguousSeparator => "ambiguous_separator",
            TargetError::DotSegment => "dot_segment",
            TargetError::ControlCharacter => "control_character",
            TargetError::NotUtf8 => "not_utf8",
            TargetError::DoubleEscape => "double_escape",
            TargetError::ConflictingTarget => "conflicting_target",
            TargetError::NotCanonical => "not_canonical",
        }
    }
}

/// A host in canonical form, with where its name ends (before `:port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostForm<'a> {
    /// `name[:port]`, borrowed when the input was already canonical.
    pub text: Cow<'a, str>,
    /// Length of the name part of `text` (IPv6 addresses keep their brackets).
    pub name_len: usize,
}

impl HostForm<'_> {
    pub fn name(&self) -> &str {
        &self.text[..self.name_len]
    }
}

/// Longest host name DNS allows (RFC 1035), in presentation form without the trailing dot.
const MAX_HOST_NAME: usize = 253;

/// The canonical form of a `Host` header value (or of an absolute target's authority).
pub fn canonical_host(raw: &str) -> Result<HostForm<'_>, TargetError> {
    let (name, port) = split_host_port(raw)?;
    let port = match port {
        None | Some("") => None,
        Some(digits) => Some(canonical_port(digits)?),
    };
    let name_text: Cow<'_, str> = if let Some(inner) = name.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or(TargetError::MalformedHost)?;
        // No zone ids (`%25eth0`) and no IPvFuture: only what `Ipv6Addr` reads.
        let address: Ipv6Addr = inner.parse().map_err(|_| TargetError::MalformedHost)?;
        let canonical = format!("[{address}]");
        if canonical == name { Cow::Borrowed(name) } else { Cow::Owned(canonical) }
    } else {
        canonical_name(name)?
    };
    let name_len = name_text.len();
    let port_len = port.as_ref().map_or(0, |port| port.len() + 1);
    // Already canonical, port and all (the usual case): no copy.
    let unchanged = matches!(name_text, Cow::Borrowed(_))
        && port.as_ref().is_none_or(|port| matches!(port, Cow::Borrowed(_)))
        && name_len + port_len == raw.len();
    let text = if unchanged {
        Cow::Borrowed(raw)
    } else {
        match port {
            None => Cow::Owned(name_text.into_owned()),
            Some(port) => Cow::Owned(format!("{name_text}:{port}")),
        }
    };
    Ok(HostForm { text, name_len })
}

/// `name` and the text after its port separator (if any). Only the bracketed IPv6 form may contain `:`.
fn split_host_port(raw: &str) -> Result<(&str, Option<&str>), TargetError> {
    if raw.starts_with('[') {
        let end = raw.find(']').ok_or(TargetError::MalformedHost)?;
        let (name, rest) = raw.split_at(end + 1);
        return match rest {
            "" => Ok((name, None)),
            _ => rest.strip_prefix(':').map(|port| (name, Some(port))).ok_or(TargetError::MalformedHost),
        };
    }
    match raw.split_once(':') {
        None => Ok((raw, None)),
        Some((name, port)) => Ok((name, Some(port))),
    }
}

/// Digits only (no sign, no spaces, no second colon), 1-65535, printed without leading zeros.
fn canonical_port(digits: &str) -> Result<Cow<'_, str>, TargetError> {
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TargetError::MalformedHost);
    }
    let value: u32 = digits.parse().map_err(|_| TargetError::MalformedHost)?;
    if value == 0 || value > u32::from(u16::MAX) {
        return Err(TargetError::MalformedHost);
    }
    if digits.starts_with('0') { Ok(Cow::Owned(value.to_string())) } else { Ok(Cow::Borrowed(digits)) }
}

/// A DNS-style name or IPv4 address: labels of letters, digits, `-` and `_`, separated by single dots.
fn canonical_name(name: &str) -> Result<Cow<'_, str>, TargetError> {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() || trimmed.len() > MAX_HOST_NAME {
        return Err(TargetError::MalformedHost);
    }
    let mut has_upper = false;
    for label in trimmed.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(TargetError::MalformedHost);
        }
        for byte in label.bytes() {
            match byte {
                b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => {}
                b'A'..=b'Z' => has_upper = true,
                _ => return Err(TargetError::MalformedHost),
            }
        }
    }
    Ok(match (has_upper, trimmed.len() == name.len()) {
        (false, true) => Cow::Borrowed(name),
        (false, false) => Cow::Borrowed(trimmed),
        (true, _) => Cow::Owned(trimmed.to_ascii_lowercase()),
    })
}

/// Characters an app may see literally in a path segment (RFC 3986 `pchar` without escapes).
fn is_path_literal(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&byte)
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~".contains(&byte)
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// The canonical form of a request path (without its query). Borrowed when `raw` is already canonical,
/// which is the case for nearly every request a browser sends.
pub fn canonical_path(raw: &str) -> Result<Cow<'_, str>, TargetError> {
    if !raw.starts_with('/') {
        return Err(TargetError::NotAPath);
    }
    if is_plainly_canonical(raw) {
        return Ok(Cow::Borrowed(raw));
    }
    let bytes = raw.as_bytes();
    // Each byte of the path as an app that decodes would read it, and whether it arrived escaped.
    let mut decoded: Vec<(u8, bool)> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte == b'%' {
            let high = bytes.get(i + 1).copied().and_then(hex_value);
            let low = bytes.get(i + 2).copied().and_then(hex_value);
            let (Some(high), Some(low)) = (high, low) else { return Err(TargetError::MalformedEscape) };
            let value = high << 4 | low;
            // An escaped `?` or `#` ends the path for an app that decodes it and hands it on (a second
            // server, a redirect): a boundary to some readers and not to others, like an escaped slash.
            if matches!(value, b'/' | b'\\' | b'?' | b'#') {
                return Err(TargetError::AmbiguousSeparator);
            }
            decoded.push((value, true));
            i += 3;
        } else {
            // A literal `?` or `#` ends a path; in one handed to this function it is not part of the path.
            if matches!(byte, b'\\' | b'?' | b'#') {
                return Err(TargetError::AmbiguousSeparator);
            }
            decoded.push((byte, false));
            i += 1;
        }
    }
    let plain: Vec<u8> = decoded.iter().map(|&(byte, _)| byte).collect();
    if plain.iter().any(|&byte| byte < 0x20 || byte == 0x7f) {
        return Err(TargetError::ControlCharacter);
    }
    if std::str::from_utf8(&plain).is_err() {
        return Err(TargetError::NotUtf8);
    }
    if plain.windows(3).any(|w| w[0] == b'%' && hex_value(w[1]).is_some() && hex_value(w[2]).is_some()) {
        return Err(TargetError::DoubleEscape);
    }

    let mut out = String::with_capacity(raw.len());
    let segments: Vec<&[(u8, bool)]> = decoded.split(|&(byte, escaped)| byte == b'/' && !escaped).collect();
    // The first "segment" is the empty text before the leading `/`; a trailing slash leaves an empty last one.
    let last = segments.len() - 1;
    for (index, segment) in segments.iter().enumerate().skip(1) {
        if segment.is_empty() && index != last {
            continue; // `//` merged
        }
        if is_dot_segment(segment) {
            return Err(TargetError::DotSegment);
        }
        out.push('/');
        for &(byte, escaped) in *segment {
            if (escaped && is_unreserved(byte)) || (!escaped && is_path_literal(byte)) {
                out.push(char::from(byte));
            } else {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    if out == raw { Ok(Cow::Borrowed(raw)) } else { Ok(Cow::Owned(out)) }
}

/// `.` or `..`, also with `;parameters` after it (Java servers read `/..;x/` as `/../`).
fn is_dot_segment(segment: &[(u8, bool)]) -> bool {
    let end = segment.iter().position(|&(byte, _)| byte == b';').unwrap_or(segment.len());
    let name = &segment[..end];
    !name.is_empty() && name.len() <= 2 && name.iter().all(|&(byte, _)| byte == b'.')
}

/// The common case, decided in one pass without allocating: only literal path characters, no escapes, no
/// empty segments (except a trailing slash) and no segment starting with a dot.
fn is_plainly_canonical(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    let mut previous = b'/';
    for &byte in &bytes[1..] {
        let ok = match byte {
            b'/' => previous != b'/',
            b'.' => previous != b'/',
            _ => is_path_literal(byte),
        };
        if !ok {
            return false;
        }
        previous = byte;
    }
    true
}

/// The path that access rules judge: the canonical path percent-decoded. `canonical` must come from
/// [`canonical_path`], which guarantees the escapes decode to UTF-8.
pub fn judged_path(canonical: &str) -> Cow<'_, str> {
    percent_encoding::percent_decode_str(canonical).decode_utf8_lossy()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(raw: &str) -> Result<String, TargetError> {
        canonical_host(raw).map(|form| form.text.into_owned())
    }

    #[test]
    fn hosts_are_lower_cased_without_trailing_dots_or_leading_zeros() {
        for (raw, canonical) in [
            ("apps.example.com", "apps.example.com"),
            ("Apps.Example.COM", "apps.example.com"),
            ("apps.example.com.", "apps.example.com"),
            ("apps.example.com.:8443", "apps.example.com:8443"),
            ("APPS.example.com:08443", "apps.example.com:8443"),
            ("apps.example.com:", "apps.example.com"),
            ("127.0.0.1:8501", "127.0.0.1:8501"),
            ("[::1]:8501", "[::1]:8501"),
            ("[0:0:0:0:0:0:0:1]", "[::1]"),
            ("[::FFFF:7f00:1]:80", "[::ffff:127.0.0.1]:80"),
            ("under_score-host", "under_score-host"),
        ] {
            assert_eq!(host(raw), Ok(canonical.to_owned()), "{raw}");
        }
        let form = canonical_host("Ops.Example.com.:0443").unwrap();
        assert_eq!(form.name(), "ops.example.com");
    }

    #[test]
    fn hosts_that_are_not_name_and_port_are_refused() {
        for raw in [
            "ops.example.com:abc",
            "ops.example.com:1:2",
            "ops.example.com:+1",
            "ops.example.com:-1",
            "ops.example.com: 1",
            "ops.example.com:0",
            "ops.example.com:65536",
            "ops.example.com:123456",
            "ops.example.com..",
            ".ops.example.com",
            "ops..example.com",
            "",
            ".",
            ":8501",
            "user@ops.example.com",
            "ops.example.com/x",
            "ops%2eexample.com",
            "ops example.com",
            "[::1",
            "[::1]x",
            "[::1]:x",
            "[fe80::1%25eth0]",
            "[v1.fe]",
            "[127.0.0.1]",
            "::1",
            "ops.exämple.com",
        ] {
            assert!(canonical_host(raw).is_err(), "{raw:?} accepted as {:?}", canonical_host(raw));
        }
        assert!(canonical_host(&"a".repeat(64)).is_err(), "labels are at most 63 characters");
        assert!(canonical_host(&["a"; 128].join(".")).is_err(), "names are at most 253 characters");
    }

    #[test]
    fn canonical_hosts_are_borrowed() {
        assert!(matches!(canonical_host("apps.example.com:8501").unwrap().text, Cow::Borrowed(_)));
        assert!(matches!(canonical_host("apps.example.com:").unwrap().text, Cow::Owned(_)));
    }

    fn path(raw: &str) -> Result<String, TargetError> {
        canonical_path(raw).map(Cow::into_owned)
    }

    #[test]
    fn paths_are_rewritten_into_one_form() {
        for (raw, canonical) in [
            ("/", "/"),
            ("/app/page", "/app/page"),
            ("/app/page/", "/app/page/"),
            ("//admin", "/admin"),
            ("/admin//x///", "/admin/x/"),
            ("/%61dmin", "/admin"),
            ("/%7euser/%2D", "/~user/-"),
            ("/caf%c3%a9", "/caf%C3%A9"),
            ("/a%20b", "/a%20b"),
            ("/a%3bb", "/a%3Bb"),
            ("/a\"b", "/a%22b"),
            ("/.well-known/openid-configuration", "/.well-known/openid-configuration"),
            ("/a/...", "/a/..."),
            ("/100%25", "/100%25"),
            ("/%2e%2ejs", "/..js"),
        ] {
            assert_eq!(path(raw), Ok(canonical.to_owned()), "{raw}");
        }
    }

    #[test]
    fn paths_that_apps_could_read_differently_are_refused() {
        for (raw, why) in [
            ("/admin/../static/x", TargetError::DotSegment),
            ("/static/./x", TargetError::DotSegment),
            ("/static/..", TargetError::DotSegment),
            ("/static/%2e%2e/admin", TargetError::DotSegment),
            ("/static/.%2E/admin", TargetError::DotSegment),
            ("/static/%2e/admin", TargetError::DotSegment),
            ("/static/..;x/admin", TargetError::DotSegment),
            ("/static/..%3b/admin", TargetError::DotSegment),
            ("/static/..%2fadmin", TargetError::AmbiguousSeparator),
            ("/static%2f..%2fadmin", TargetError::AmbiguousSeparator),
            ("/static%2F..%2Fadmin", TargetError::AmbiguousSeparator),
            ("/static\\..\\admin", TargetError::AmbiguousSeparator),
            ("/static%5c..%5cadmin", TargetError::AmbiguousSeparator),
            ("/config%3F", TargetError::AmbiguousSeparator),
            ("/config%23x", TargetError::AmbiguousSeparator),
            ("/config?x", TargetError::AmbiguousSeparator),
            ("/config#x", TargetError::AmbiguousSeparator),
            ("/admin/%ff/../secret.txt", TargetError::NotUtf8),
            ("/admin/%ff", TargetError::NotUtf8),
            ("/%c0%ae%c0%ae/admin", TargetError::NotUtf8),
            ("/a%00b", TargetError::ControlCharacter),
            ("/a%0d%0ab", TargetError::ControlCharacter),
            ("/a%7f", TargetError::ControlCharacter),
            ("/a%", TargetError::MalformedEscape),
            ("/a%2", TargetError::MalformedEscape),
            ("/a%zz", TargetError::MalformedEscape),
            ("/%252e%252e/admin", TargetError::DoubleEscape),
            ("/a%2541", TargetError::DoubleEscape),
            ("*", TargetError::NotAPath),
            ("admin", TargetError::NotAPath),
            ("", TargetError::NotAPath),
        ] {
            assert_eq!(path(raw), Err(why), "{raw}");
        }
    }

    #[test]
    fn canonical_paths_are_borrowed_and_fixed_points() {
        for raw in ["/", "/_stcore/health", "/app/static/x.js", "/a;b=c/d:e@f"] {
            assert!(matches!(canonical_path(raw).unwrap(), Cow::Borrowed(_)), "{raw}");
        }
        for raw in ["//a", "/%61", "/caf%c3%a9", "/a\"b", "/.x"] {
            let once = path(raw).unwrap();
            assert_eq!(path(&once).unwrap(), once, "{raw}");
        }
    }

    #[test]
    fn the_judged_path_is_the_canonical_path_decoded() {
        assert_eq!(judged_path("/caf%C3%A9/a%20b"), "/café/a b");
        assert_eq!(judged_path("/admin"), "/admin");
    }
}
