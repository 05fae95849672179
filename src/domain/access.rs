//! Access rules (`[[access]]` in the configuration): which paths of the app need which roles, and which need
//! no sign-in at all. A request is judged by the most specific rule that matches it: a rule for its host
//! before a rule for every host, then the longest path prefix. Without a matching rule, any signed-in user
//! may pass (Gatehouse's default).
//!
//! Prefixes match whole path segments (`/admin` covers `/admin` and `/admin/x`, not `/administrator`). The
//! host and path judged are the canonical ones of [`super::request_target`], which are also what the app
//! receives; requests without a canonical form never get here.
//!
//! Apps disagree on more than encoding: Express matches paths regardless of letter case by default, and Java
//! servers cut `;parameters` off segments (`/admin;x` is `/admin` to them). A path is therefore judged in
//! each reading an app could give it (as sent, lower-cased, without `;parameters`), and a user must satisfy
//! every rule those readings reach: another reading can only add requirements, never remove one.

use super::request_target::{canonical_host, canonical_path, judged_path};
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access<'a> {
    /// Anyone, signed in or not.
    Public,
    /// Any signed-in user.
    SignedIn,
    /// A signed-in user holding one of these roles.
    AnyRole(&'a [Role]),
    /// A signed-in user holding one role of each set: readings of one path that reach different rules.
    EveryOne(Vec<&'a [Role]>),
}

impl<'a> Access<'a> {
    /// Whether a user holding `roles` may pass (for a signed-in user).
    pub fn allows(&self, roles: &[Role]) -> bool {
        self.unmet(roles).is_none()
    }

    /// The first set of roles `roles` has none of, for the refusal's message.
    pub fn unmet(&self, roles: &[Role]) -> Option<&'a [Role]> {
        let satisfied = |needed: &[Role]| needed.iter().any(|role| roles.contains(role));
        match self {
            Access::Public | Access::SignedIn => None,
            Access::AnyRole(needed) => (!satisfied(needed)).then_some(*needed),
            Access::EveryOne(sets) => sets.iter().copied().find(|needed| !satisfied(needed)),
        }
    }

    /// Both requirements at once.
    fn and(self, other: Access<'a>) -> Access<'a> {
        match (self, other) {
            (Access::Public, other) | (other, Access::Public) => other,
            (Access::SignedIn, other) | (other, Access::SignedIn) => other,
            (Access::AnyRole(a), Access::AnyRole(b)) if a == b => Access::AnyRole(a),
            (a, b) => {
                let mut sets = a.role_sets();
                for set in b.role_sets() {
                    if !sets.contains(&set) {
                        sets.push(set);
                    }
                }
                Access::EveryOne(sets)
            }
        }
    }

    fn role_sets(self) -> Vec<&'a [Role]> {
        match self {
            Access::Public | Access::SignedIn => Vec::new(),
            Access::AnyRole(set) => vec![set],
            Access::EveryOne(sets) => sets,
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
        let normalised = rule_prefix(prefix).ok_or_else(|| {
            InvalidInput::new(format!(
                "path '{prefix}' is not a valid path (no '.' or '..' segments, encoded '/' or backslashes)"
            ))
        })?;
        if public && !roles.is_empty() {
            return Err(InvalidInput::new(format!(
                "path '{prefix}' has both public = true and roles; a public path needs no sign-in, so give one or the other"
            )));
        }
        let host = match host.map(str::trim) {
            None => None,
            Some(h) => match canonical_host(h) {
                Ok(form) if !h.contains([':', '[']) => Some(form.name().to_owned()),
                _ => {
                    return Err(InvalidInput::new(format!(
                        "host '{h}' must be a host name like apps.example.com (no scheme, port or path)"
                    )));
                }
            },
        };
        Ok(Self { host, prefix: normalised, roles, public })
    }

    fn matches(&self, host: Option<&str>, path: &str, case: Case) -> bool {
        if let Some(rule_host) = &self.host
            && host != Some(rule_host.as_str())
        {
            return false;
        }
        match case {
            Case::Exact => covers(&self.prefix, path),
            Case::Ignored => covers_ignoring_case(&self.prefix, path),
        }
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

/// How an app compares path letters: exactly (Starlette, most servers) or ignoring case (Express's default,
/// Spring configured so, Windows servers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Exact,
    Ignored,
}

/// Whether `prefix` covers `path` segment by segment.
fn covers(prefix: &str, path: &str) -> bool {
    prefix == "/" || path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

/// [`covers`], comparing letters without regard to case the way Java's `equalsIgnoreCase` does, character by
/// character: equal, or equal in upper case, or equal in lower case. So the dotless `ı` matches `i` (both are
/// `I` in upper case), as it does for a Spring app matching paths without case.
fn covers_ignoring_case(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    let mut rest = path.chars();
    for wanted in prefix.chars() {
        match rest.next() {
            Some(found) if same_ignoring_case(wanted, found) => {}
            _ => return false,
        }
    }
    matches!(rest.next(), None | Some('/'))
}

fn same_ignoring_case(a: char, b: char) -> bool {
    /// The mapping when it is one character (Java compares `char` by `char`; longer mappings never match).
    fn single(mut mapped: impl Iterator<Item = char>) -> Option<char> {
        let first = mapped.next()?;
        mapped.next().is_none().then_some(first)
    }
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(&b);
    }
    a == b
        || matches!((single(a.to_uppercase()), single(b.to_uppercase())), (Some(x), Some(y)) if x == y)
        || matches!((single(a.to_lowercase()), single(b.to_lowercase())), (Some(x), Some(y)) if x == y)
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

    /// Whether any rule is limited to a host (then the `Host` judged must be the one the browser sent).
    pub fn has_host_rules(&self) -> bool {
        self.rules.iter().any(|rule| rule.host.is_some())
    }

    /// What a request for `path` on `host` needs. Both must be canonical ([`super::request_target`]): `host`
    /// the host name without its port, `path` the judged (decoded) path.
    pub fn decide(&self, host: Option<&str>, path: &str) -> Access<'_> {
        if self.rules.is_empty() {
            return Access::SignedIn;
        }
        let mut access = self.decide_one(host, path, Case::Exact);
        // Case matters only where the path has letters; parameters only where it has a `;`.
        if path.bytes().any(|b| b.is_ascii_alphabetic()) {
            access = access.and(self.decide_one(host, path, Case::Ignored));
        }
        if path.contains(';') {
            let bare = without_parameters(path);
            access = access.and(self.decide_one(host, &bare, Case::Exact));
            access = access.and(self.decide_one(host, &bare, Case::Ignored));
        }
        access
    }

    /// The most specific rule for one reading of the path. Rules that tie (`/finance` and `/Finance` when
    /// case is ignored) all apply.
    fn decide_one(&self, host: Option<&str>, path: &str, case: Case) -> Access<'_> {
        let specificity = |rule: &AccessRule| (rule.host.is_some(), rule.prefix.len());
        let matching = || self.rules.iter().filter(|rule| rule.matches(host, path, case));
        let Some(best) = matching().map(specificity).max() else { return Access::SignedIn };
        matching()
            .filter(|rule| specificity(rule) == best)
            .map(AccessRule::access)
            .reduce(Access::and)
            .unwrap_or(Access::SignedIn)
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
        Access::AnyRole(roles) => format!("roles: {}", join_roles(roles)),
        Access::EveryOne(sets) => {
            let sets: Vec<String> = sets.iter().map(|roles| format!("({})", join_roles(roles))).collect();
            format!("a role of each of {}", sets.join(", "))
        }
    }
}

fn join_roles(roles: &[Role]) -> String {
    roles.iter().map(Role::as_str).collect::<Vec<_>>().join(", ")
}

/// A rule's prefix in the form paths are judged in: canonical, decoded, without a trailing slash.
fn rule_prefix(prefix: &str) -> Option<String> {
    let canonical = canonical_path(prefix).ok()?;
    let judged = judged_path(&canonical);
    let trimmed = judged.trim_end_matches('/');
    Some(if trimmed.is_empty() { "/".to_owned() } else { trimmed.to_owned() })
}

/// The path as a Java server routes it: `;parameters` cut off every segment, then the empty segments that
/// leaves merged away (`/;x/admin` is `/admin` to Tomcat and Spring).
fn without_parameters(path: &str) -> String {
    let mut bare = String::with_capacity(path.len());
    for segment in path.split('/').map(|segment| segment.split(';').next().unwrap_or("")) {
        if !segment.is_empty() {
            bare.push('/');
            bare.push_str(segment);
        }
    }
    if bare.is_empty() { "/".to_owned() } else { bare }
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
        assert_eq!(p.decide(Some("apps.example.com"), "/static/app.js"), Access::Public);
        assert_eq!(p.decide(None, "/"), Access::SignedIn);
    }

    #[test]
    fn host_rules_apply_to_their_host_only() {
        let p = policy();
        let analysts = [role("analyst"), role("admin")];
        assert_eq!(p.decide(Some("reports.example.com"), "/"), Access::AnyRole(&analysts));
        // A host rule beats a longer prefix for every host.
        assert_eq!(p.decide(Some("reports.example.com"), "/static/x.css"), Access::AnyRole(&analysts));
        assert_eq!(p.decide(Some("other.example.com"), "/x"), Access::SignedIn);
        assert_eq!(p.decide(None, "/x"), Access::SignedIn);
        // Rule hosts are canonical too.
        let rule = AccessRule::new(Some("Reports.Example.com."), "/", vec![], true).unwrap();
        assert_eq!(rule.host.as_deref(), Some("reports.example.com"));
    }

    #[test]
    fn every_reading_an_app_could_give_a_path_must_pass() {
        let p = policy();
        let admin = Access::AnyRole(&[role("admin")]);
        // Express ignores case by default; Java servers cut `;parameters` off segments.
        for sneaky in [
            "/ADMIN",
            "/Admin/users",
            "/admin;jsessionid=x",
            "/ADMIN;x/users",
            "/aDmIn",
            "/;x/admin",
            "/admin/;/x",
            "/;/;a/admin",
        ] {
            assert_eq!(p.decide(Some("apps.example.com"), sneaky), admin, "{sneaky}");
        }
        // A public rule covers only the readings that are public in every way.
        assert_eq!(p.decide(Some("apps.example.com"), "/STATIC/x"), Access::SignedIn);
        assert_eq!(p.decide(Some("apps.example.com"), "/static;x/app.js"), Access::SignedIn);
        assert_eq!(p.decide(Some("apps.example.com"), "/static/a;b"), Access::Public);
        // A rule written with capitals still covers its own path exactly.
        let capitals = AccessPolicy::new(vec![AccessRule::new(None, "/Reports", vec![], true).unwrap()]);
        assert_eq!(capitals.decide(None, "/Reports/q1"), Access::Public);
        assert_eq!(capitals.decide(None, "/reports/q1"), Access::SignedIn);
    }

    #[test]
    fn letters_compare_as_java_compares_them_without_case() {
        assert!(same_ignoring_case('a', 'A'));
        assert!(same_ignoring_case('ı', 'i'), "dotless i is I in upper case, like i");
        assert!(same_ignoring_case('é', 'É'));
        assert!(same_ignoring_case('\u{212A}', 'k'), "the Kelvin sign is k in lower case");
        assert!(!same_ignoring_case('a', 'b'));
        assert!(!same_ignoring_case('ß', 's'), "two-letter mappings never match");
        assert!(covers_ignoring_case("/admin", "/ADMIN/x"));
        assert!(!covers_ignoring_case("/admin", "/administrator"));
        assert!(!covers_ignoring_case("/admin", "/adm"));
    }

    #[test]
    fn readings_that_reach_different_roles_need_all_of_them() {
        let p = AccessPolicy::new(vec![
            AccessRule::new(None, "/finance", vec![role("finance")], false).unwrap(),
            AccessRule::new(None, "/Finance", vec![role("board")], false).unwrap(),
        ]);
        let access = p.decide(None, "/Finance/q1");
        assert!(!access.allows(&[role("board")]));
        assert!(!access.allows(&[role("finance")]));
        assert!(access.allows(&[role("board"), role("finance")]));
        assert_eq!(access.unmet(&[role("board")]), Some(&[role("finance")][..]));
    }

    #[test]
    fn rule_prefixes_must_have_a_canonical_form() {
        assert_eq!(AccessRule::new(None, "/%61dmin/", vec![], false).unwrap().prefix, "/admin");
        assert_eq!(AccessRule::new(None, "//caf%c3%a9", vec![], false).unwrap().prefix, "/café");
        for bad in ["/static/../admin", "/a%2fb", "/a\\b", "/%ff"] {
            assert!(AccessRule::new(None, bad, vec![], false).is_err(), "{bad}");
        }
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
