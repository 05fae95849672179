//! Access rules (`[[access]]` in the configuration): which paths of the app need which roles, and which need
//! no sign-in at all. A request is judged by the most specific rule that matches it: a rule for its host
//! before a rule for every host, then the longest path prefix. Without a matching rule, any signed-in user
//! may pass (Gatehouse's default).
//!
//! Prefixes match whole path segments (`/admin` covers `/admin` and `/admin/x`, not `/administrator`), and
//! paths are compared after normalisation (percent-decoding, `.`/`..` segments resolved, repeated slashes
//! collapsed), so `/public/../admin` or `/%61dmin` cannot slip past a rule the app would still route to.

use super::{InvalidInput, Role};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRule {
    /// Host name (lower case, no port) the rule is limited to; `None` for every host.
    pub host: Option<String>,
    /// Normalised path prefix, starting with `/`, without a trailing slash (except `/` itself).
    pub prefix: String,
    /// Any one of these roles lets a signed-in user in; empty means any signed-in user.
    pub roles: Vec<Role>,
    /// No sign-in needed.
    pub public: bool,
}

/// What a request needs, according to the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access<'a> {
    /// Anyone, signed in or not.
    Public,
    /// Any signed-in user.
    SignedIn,
    /// A signed-in user holding one of these roles.
    AnyRole(&'a [Role]),
}

impl Access<'_> {
    /// Whether a user holding `roles` may pass (for a signed-in user).
    pub fn allows(&self, roles: &[Role]) -> bool {
        match self {
            Access::Public | Access::SignedIn => true,
            Access::AnyRole(needed) => needed.iter().any(|role| roles.contains(role)),
        }
    }
}

impl AccessRule {
    pub fn new(host: Option<&str>, prefix: &str, roles: Vec<Role>, public: bool) -> Result<Self, InvalidInput> {
        if !prefix.starts_with('/') {
            return Err(InvalidInput::new(format!("path '{prefix}' must start with '/'")));
        }
        if prefix.contains(['?', '#']) {
            return Err(InvalidInput::new(format!("path '{prefix}' must be a path only, without '?' or '#'")));
        }
        let normalised =
            normalize_path(prefix).ok_or_else(|| InvalidInput::new(format!("path '{prefix}' is not a valid path")))?;
        if public && !roles.is_empty() {
            return Err(InvalidInput::new(format!(
                "path '{prefix}' has both public = true and roles; a public path needs no sign-in, so give one or the other"
            )));
        }
        let host = match host.map(str::trim) {
            None => None,
            Some(h) if h.is_empty() || h.contains(['/', ':', ' ']) => {
                return Err(InvalidInput::new(format!(
                    "host '{h}' must be a host name like apps.example.com (no scheme, port or path)"
                )));
            }
            Some(h) => Some(h.to_ascii_lowercase()),
        };
        Ok(Self { host, prefix: normalised, roles, public })
    }

    fn matches(&self, host: Option<&str>, path: &str) -> bool {
        if let Some(rule_host) = &self.host
            && host != Some(rule_host.as_str())
        {
            return false;
        }
        covers(&self.prefix, path)
    }

    pub fn access(&self) -> Access<'_> {
        if self.public {
            Access::Public
        } else if self.roles.is_empty() {
            Access::SignedIn
        } else {
            Access::AnyRole(&self.roles)
        }
    }

    /// How the rule reads in messages: `/admin` or `/admin on apps.example.com`.
    pub fn describe(&self) -> String {
        match &self.host {
            Some(host) => format!("{} on {host}", self.prefix),
            None => self.prefix.clone(),
        }
    }
}

/// Whether `prefix` covers `path` segment by segment.
fn covers(prefix: &str, path: &str) -> bool {
    prefix == "/" || path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessPolicy {
    rules: Vec<AccessRule>,
}

impl AccessPolicy {
    pub fn new(rules: Vec<AccessRule>) -> Self {
        Self { rules }
    }

    pub fn rules(&self) -> &[AccessRule] {
        &self.rules
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// What a request for `raw_path` (as sent, possibly percent-encoded) on `host` needs. A path that cannot
    /// be normalised (invalid encoding) is judged by the rules for `/`, never treated as public.
    pub fn decide(&self, host: Option<&str>, raw_path: &str) -> Access<'_> {
        if self.rules.is_empty() {
            return Access::SignedIn;
        }
        let host = host.map(host_without_port);
        let path = normalize_path(raw_path);
        let matching = self.rules.iter().filter(|rule| match &path {
            Some(path) => rule.matches(host.as_deref(), path),
            None => rule.matches(host.as_deref(), "/") && rule.prefix == "/",
        });
        let best = matching.max_by_key(|rule| (rule.host.is_some(), rule.prefix.len()));
        match best {
            // A path that could not be read is never public: it needs at least a signed-in user.
            Some(rule) if path.is_none() && rule.public => Access::SignedIn,
            Some(rule) => rule.access(),
            None => Access::SignedIn,
        }
    }

    /// Problems a person should fix: two rules for the same host and prefix (only one could ever apply).
    pub fn conflicts(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (i, a) in self.rules.iter().enumerate() {
            for b in &self.rules[i + 1..] {
                if a.host == b.host && a.prefix == b.prefix {
                    problems.push(format!("two rules for {}; keep one", a.describe()));
                }
            }
        }
        problems
    }

    /// Overlaps worth a second look: a rule inside another that is looser than it (a public path inside a
    /// protected one, or roles the outer rule does not require), since the more specific rule wins.
    pub fn overlap_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for inner in &self.rules {
            for outer in &self.rules {
                let nested = !std::ptr::eq(inner, outer)
                    && (outer.host.is_none() || outer.host == inner.host)
                    && inner.prefix != outer.prefix
                    && covers(&outer.prefix, &inner.prefix);
                if !nested || outer.public {
                    continue;
                }
                let looser = inner.public
                    || (!outer.roles.is_empty()
                        && (inner.roles.is_empty() || inner.roles.iter().any(|r| !outer.roles.contains(r))));
                if looser {
                    warnings.push(format!(
                        "{} is inside {} but less strict ({}); the more specific rule wins, so {} is {}",
                        inner.describe(),
                        outer.describe(),
                        describe_access(outer.access()),
                        inner.describe(),
                        describe_access(inner.access()),
                    ));
                }
            }
        }
        warnings
    }
}

/// "public", "any signed-in user" or "roles: admin, staff".
pub fn describe_access(access: Access<'_>) -> String {
    match access {
        Access::Public => "public".to_owned(),
        Access::SignedIn => "any signed-in user".to_owned(),
        Access::AnyRole(roles) => {
            format!("roles: {}", roles.iter().map(Role::as_str).collect::<Vec<_>>().join(", "))
        }
    }
}

fn host_without_port(host: &str) -> String {
    let host = host.trim();
    let bare = if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':').filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit())).map_or(host, |(h, _)| h)
    };
    bare.trim_end_matches('.').to_ascii_lowercase()
}

/// The path as an app would route it: query dropped, percent-decoded, `.` and `..` segments resolved, empty
/// segments removed. `None` for an encoding that does not decode to UTF-8 (or a path not starting with `/`).
pub fn normalize_path(raw: &str) -> Option<String> {
    let path = raw.split(['?', '#']).next().unwrap_or("");
    if !path.starts_with('/') {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8().ok()?;
    // Backslashes are separators to some servers.
    let decoded = decoded.replace('\\', "/");
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
    Some(format!("/{}", segments.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str) -> Role {
        Role::parse(name).unwrap()
    }

    fn policy() -> AccessPolicy {
        AccessPolicy::new(vec![
            AccessRule::new(None, "/admin", vec![role("admin")], false).unwrap(),
            AccessRule::new(None, "/_stcore/health", vec![], true).unwrap(),
            AccessRule::new(None, "/static/", vec![], true).unwrap(),
            AccessRule::new(Some("reports.example.com"), "/", vec![role("analyst"), role("admin")], false).unwrap(),
        ])
    }

    #[test]
    fn the_most_specific_rule_decides() {
        let p = policy();
        assert_eq!(p.decide(Some("apps.example.com"), "/admin/users"), Access::AnyRole(&[role("admin")]));
        assert_eq!(p.decide(Some("apps.example.com"), "/admin"), Access::AnyRole(&[role("admin")]));
        assert_eq!(p.decide(Some("apps.example.com"), "/administrator"), Access::SignedIn);
        assert_eq!(p.decide(Some("apps.example.com"), "/_stcore/health"), Access::Public);
        assert_eq!(p.decide(Some("apps.example.com"), "/_stcore/healthz"), Access::SignedIn);
        assert_eq!(p.decide(Some("apps.example.com"), "/static/app.js?v=1"), Access::Public);
        assert_eq!(p.decide(None, "/"), Access::SignedIn);
    }

    #[test]
    fn host_rules_apply_to_their_host_only_and_ignore_the_port() {
        let p = policy();
        let analysts = [role("analyst"), role("admin")];
        assert_eq!(p.decide(Some("reports.example.com:8443"), "/"), Access::AnyRole(&analysts));
        assert_eq!(p.decide(Some("REPORTS.example.com"), "/x"), Access::AnyRole(&analysts));
        // A host rule beats a longer prefix for every host.
        assert_eq!(p.decide(Some("reports.example.com"), "/static/x.css"), Access::AnyRole(&analysts));
        assert_eq!(p.decide(Some("other.example.com"), "/x"), Access::SignedIn);
    }

    #[test]
    fn encoded_and_dotted_paths_cannot_slip_past_a_rule() {
        let p = policy();
        let admin = Access::AnyRole(&[role("admin")]);
        for sneaky in
            ["/static/../admin", "/%61dmin", "//admin", "/static/%2e%2e/admin", "/./admin/", "/static\\..\\admin"]
        {
            assert_eq!(p.decide(Some("apps.example.com"), sneaky), admin, "{sneaky}");
        }
        // Undecodable paths are never public.
        assert_eq!(p.decide(None, "/static/%ff"), Access::SignedIn);
    }

    #[test]
    fn no_rules_means_any_signed_in_user() {
        assert_eq!(AccessPolicy::default().decide(None, "/anything"), Access::SignedIn);
        assert!(Access::SignedIn.allows(&[]));
        assert!(!Access::AnyRole(&[role("admin")]).allows(&[role("viewer")]));
        assert!(Access::AnyRole(&[role("admin"), role("staff")]).allows(&[role("staff")]));
    }

    #[test]
    fn rules_are_validated() {
        assert!(AccessRule::new(None, "admin", vec![], false).is_err());
        assert!(AccessRule::new(None, "/x?y", vec![], false).is_err());
        assert!(AccessRule::new(None, "/x", vec![role("a")], true).is_err());
        assert!(AccessRule::new(Some("https://x.example.com"), "/", vec![], false).is_err());
        assert_eq!(AccessRule::new(None, "/static/", vec![], true).unwrap().prefix, "/static");
    }

    #[test]
    fn duplicates_are_conflicts_and_looser_nested_rules_are_warned() {
        let p = AccessPolicy::new(vec![
            AccessRule::new(None, "/admin", vec![role("admin")], false).unwrap(),
            AccessRule::new(None, "/admin/", vec![role("staff")], false).unwrap(),
            AccessRule::new(None, "/admin/help", vec![], true).unwrap(),
        ]);
        assert_eq!(p.conflicts().len(), 1, "{:?}", p.conflicts());
        let warnings = p.overlap_warnings();
        assert!(warnings.iter().any(|w| w.starts_with("/admin/help is inside /admin")), "{warnings:?}");
        let strict = AccessPolicy::new(vec![
            AccessRule::new(None, "/", vec![role("staff"), role("admin")], false).unwrap(),
            AccessRule::new(None, "/admin", vec![role("admin")], false).unwrap(),
        ]);
        assert!(strict.overlap_warnings().is_empty(), "a stricter inner rule is fine");
    }
}
