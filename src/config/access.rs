//! The access-control sections: `[[access]]` rules (path prefix, optional host, roles or `public = true`),
//! `[admin]` (which role opens the admin console) and `[audit]` (how long the audit log is kept).

use std::time::Duration;

use serde::Deserialize;

use super::ConfigReader;
use crate::domain::Role;
use crate::domain::access::{AccessPolicy, AccessRule};

#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Holders of this role may open `/_gatehouse/admin`; the first administrator (setup) gets it.
    pub role: Role,
}

#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// Events older than this are deleted by the periodic sweep; `None` keeps them forever.
    pub retention: Option<Duration>,
}

/// One `[[access]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    path: String,
    host: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    public: bool,
}

pub(super) fn read_access(r: &mut ConfigReader) -> AccessPolicy {
    // Each table on its own, so one bad table does not hide the problems of the others.
    let Some(tables) = r.value::<Vec<figment::value::Value>>("access") else { return AccessPolicy::default() };
    let mut rules = Vec::new();
    for (index, table) in tables.into_iter().enumerate() {
        let key = format!("access[{index}]");
        let rule = match table.deserialize::<RawRule>() {
            Ok(rule) => rule,
            Err(err) => {
                r.problem(&key, err.kind.to_string());
                continue;
            }
        };
        let mut roles = Vec::new();
        for name in &rule.roles {
            match Role::parse(name) {
                Ok(role) => roles.push(role),
                Err(err) => r.problem(&key, err.0),
            }
        }
        match AccessRule::new(rule.host.as_deref(), &rule.path, roles, rule.public) {
            Ok(rule) => rules.push(rule),
            Err(err) => r.problem(&key, err.0),
        }
    }
    let policy = AccessPolicy::new(rules);
    for conflict in policy.conflicts() {
        r.problem("access", conflict);
    }
    policy
}

pub(super) fn read_admin(r: &mut ConfigReader) -> AdminConfig {
    let role = r.parsed("admin.role", |s| Role::parse(s).map_err(|e| e.0)).unwrap_or_else(Role::admin);
    AdminConfig { role }
}

pub(super) fn read_audit(r: &mut ConfigReader) -> AuditConfig {
    let forever = r.string("audit.retention").is_some_and(|s| matches!(s.trim(), "forever" | "0"));
    if forever {
        return AuditConfig { retention: None };
    }
    let retention = r.duration("audit.retention").unwrap_or(Duration::from_secs(365 * 86400));
    if retention < Duration::from_secs(86400) {
        r.problem("audit.retention", "must be at least one day (or \"forever\")");
    }
    AuditConfig { retention: Some(retention) }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::domain::access::Access;

    #[test]
    fn access_rules_admin_role_and_retention_are_read() {
        let config = Config::from_toml_str(
            r#"
            [admin]
            role = "ops"
            [audit]
            retention = "90d"
            [[access]]
            path = "/_stcore/health"
            public = true
            [[access]]
            path = "/admin"
            roles = ["ops"]
            host = "apps.example.com"
            "#,
        )
        .unwrap();
        assert_eq!(config.admin.role.as_str(), "ops");
        assert_eq!(config.audit.retention, Some(std::time::Duration::from_secs(90 * 86400)));
        assert_eq!(config.access.decide(None, "/_stcore/health"), Access::Public);
        assert!(matches!(config.access.decide(Some("apps.example.com"), "/admin"), Access::AnyRole(_)));
        assert_eq!(config.access.decide(Some("other.example.com"), "/admin"), Access::SignedIn);
    }

    #[test]
    fn bad_rules_are_listed_with_their_position() {
        let problems = Config::from_toml_str(
            r#"
            [[access]]
            path = "admin"
            [[access]]
            path = "/x"
            roles = ["Not A Role!"]
            [[access]]
            path = "/y"
            colour = "red"
            [[access]]
            path = "/z"
            [[access]]
            path = "/z/"
            [audit]
            retention = "1h"
            "#,
        )
        .unwrap_err();
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"access[0]"), "{problems:?}");
        assert!(keys.contains(&"access[1]"), "{problems:?}");
        assert!(keys.contains(&"access[2]"), "unknown field: {problems:?}");
        assert!(keys.contains(&"access"), "duplicate: {problems:?}");
        assert!(keys.contains(&"audit.retention"), "{problems:?}");
        assert!(problems.iter().any(|p| p.message.contains("two rules for /z")), "{problems:?}");
    }

    #[test]
    fn defaults_are_the_admin_role_and_a_year_of_audit() {
        let config = Config::from_toml_str("[audit]\nretention = \"forever\"\n").unwrap();
        assert_eq!(config.audit.retention, None);
        let config = Config::from_toml_str("").unwrap();
        assert_eq!(config.admin.role.as_str(), "admin");
        assert_eq!(config.audit.retention, Some(std::time::Duration::from_secs(365 * 86400)));
        assert!(config.access.is_empty());
    }
}
