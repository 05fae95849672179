//! Users and the values that make them up. Usernames and emails are normalised to lower case on the way in
//! so that "Alice" and "alice" can never be two accounts, whatever the store's collation.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::InvalidInput;

/// Opaque, random identifier of a user; never reused, stable across renames and database copies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub String);

impl UserId {
    pub fn generate() -> Self {
        Self(crate::random::hex_token(16))
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A login name: 1-64 characters of lower-case letters, digits, `.`, `_` and `-`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let name = raw.trim().to_lowercase();
        if name.is_empty() || name.len() > 64 {
            return Err(InvalidInput::new("A username must be between 1 and 64 characters long."));
        }
        let valid_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-');
        let first_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        if !first_ok || !name.chars().all(valid_char) {
            return Err(InvalidInput::new(
                "A username may contain only letters, digits, '.', '_' and '-', and must start with a letter or digit.",
            ));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address: valid for RFC 5322 (read with lettre's address parser, as mail is sent) and, stricter,
/// in the plain `local@domain` form that forms accept (WHATWG's `type=email`): no quoted local parts, no
/// comments, no IP literals. Addresses reach apps in `X-Gatehouse-Email`, so `"<svg onload=...>"@x.com`,
/// valid as it is for RFC 5322, is refused. Whether an address receives mail is for verification to show.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

/// Characters of a local part in the plain form (RFC 5322 `atext` and dots).
fn is_local_part_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-.".contains(c)
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let email = raw.trim().to_lowercase();
        let invalid = || InvalidInput::new(format!("'{}' is not a valid email address.", raw.trim()));
        if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = email.rsplit_once('@').ok_or_else(invalid)?;
        let local_ok = !local.is_empty()
            && local.chars().all(is_local_part_char)
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..");
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '.')
            // A top-level label of digits only is an IPv4 address, not a domain.
            && !domain.rsplit('.').next().is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()));
        if !local_ok || !domain_ok || email.parse::<lettre::Address>().is_err() {
            return Err(invalid());
        }
        Ok(Self(email))
    }

    /// An address read back from the database, where only [`Email::parse`]d addresses are written. Not checked
    /// again: an address stored under older, looser rules must not make its account unreadable.
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A role name such as `admin` or `analyst`: 1-64 characters of lower-case letters, digits, `_` and `-`.
/// Roles travel to the app comma-separated, so a comma can never be part of one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Role(String);

impl Role {
    pub const ADMIN: &'static str = "admin";

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let role = raw.trim().to_lowercase();
        let valid_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-');
        if role.is_empty() || role.len() > 64 || !role.chars().all(valid_char) {
            return Err(InvalidInput::new(format!(
                "'{}' is not a valid role: use 1-64 letters, digits, '_' or '-'.",
                raw.trim()
            )));
        }
        Ok(Self(role))
    }

    pub fn admin() -> Self {
        Self(Self::ADMIN.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Display names are free text for people, but bounded and free of control characters because they are
/// sent to the app in an HTTP header.
pub fn parse_display_name(raw: &str) -> Result<String, InvalidInput> {
    let name = raw.trim();
    if name.chars().count() > 128 {
        return Err(InvalidInput::new("A display name may be at most 128 characters long."));
    }
    if name.chars().any(char::is_control) {
        return Err(InvalidInput::new("A display name may not contain control characters."));
    }
    Ok(name.to_owned())
}

/// A stored account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    pub email: Option<Email>,
    pub display_name: String,
    pub roles: Vec<Role>,
    /// PHC string (argon2id) or a bcrypt hash imported from elsewhere; `None` for accounts that cannot sign in
    /// with a password.
    #[serde(skip)]
    pub password_hash: Option<String>,
    pub disabled: bool,
    /// Whether the email address was proven (a code or link sent to it), or trusted (created by an admin).
    pub email_verified: bool,
    /// Set while a self-registered account waits for email verification: it cannot sign in until then and is
    /// deleted after this time.
    #[serde(with = "time::serde::rfc3339::option")]
    pub pending_until: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_login_at: Option<OffsetDateTime>,
    pub login_count: i64,
}

impl User {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.as_str() == role)
    }

    /// Name for greeting people: the display name, or the username when none was given.
    pub fn name_for_display(&self) -> &str {
        if self.display_name.is_empty() { self.username.as_str() } else { &self.display_name }
    }

    /// Waiting for its email to be verified (registration not finished).
    pub fn is_pending(&self) -> bool {
        self.pending_until.is_some()
    }
}

/// What it takes to create a user.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: Username,
    pub email: Option<Email>,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub password_hash: Option<String>,
    pub email_verified: bool,
    pub pending_until: Option<OffsetDateTime>,
    /// Created disabled (imports of accounts that were disabled where they come from).
    pub disabled: bool,
}

impl NewUser {
    /// An account made by an administrator (CLI, setup, admin console): active at once, its email trusted.
    pub fn by_admin(username: Username, email: Option<Email>, display_name: String, roles: Vec<Role>) -> Self {
        Self {
            username,
            email,
            display_name,
            roles,
            password_hash: None,
            email_verified: true,
            pending_until: None,
            disabled: false,
        }
    }
}

/// Sorts and de-duplicates roles so that stores and headers always show them the same way.
pub fn normalize_roles(mut roles: Vec<Role>) -> Vec<Role> {
    roles.sort();
    roles.dedup();
    roles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lower_cased_and_checked() {
        assert_eq!(Username::parse(" Alice ").unwrap().as_str(), "alice");
        assert!(Username::parse("").is_err());
        assert!(Username::parse("-alice").is_err());
        assert!(Username::parse("al ice").is_err());
        assert!(Username::parse("alice@example.com").is_err());
        assert!(Username::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn emails_are_shape_checked() {
        assert_eq!(Email::parse("Alice@Example.COM").unwrap().as_str(), "alice@example.com");
        for bad in [
            "alice",
            "@example.com",
            "alice@example",
            "alice@.com",
            "a b@example.com",
            "a@b..com",
            "x@example.com<script>",
            "\"<svg/onload=alert(1)>\"@example.com",
            "\"alice\"@example.com",
            "alice(comment)@example.com",
            "<alice@example.com>",
            "Alice <alice@example.com>",
            "alice@[127.0.0.1]",
            "alice@127.0.0.1",
            ".alice@example.com",
            "alice.@example.com",
            "al..ice@example.com",
            "alice@exa_mple.com",
            "alice@example.com.",
            "a@b@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
        for good in ["alice+tag@example.com", "o'brien@example.co.uk", "a.b-c_d@sub.example.org", "zoe@bücher.de"] {
            assert!(Email::parse(good).is_ok(), "{good} refused");
        }
    }

    #[test]
    fn roles_cannot_carry_commas() {
        assert!(Role::parse("a,b").is_err());
        assert_eq!(Role::parse("Analyst").unwrap().as_str(), "analyst");
    }

    #[test]
    fn display_names_refuse_control_characters() {
        assert!(parse_display_name("Alice\r\nX-Evil: 1").is_err());
        assert_eq!(parse_display_name("  Ada Lovelace ").unwrap(), "Ada Lovelace");
    }
}
