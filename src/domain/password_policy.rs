//! Rules for new passwords (setup, `users passwd`, later registration and reset). Length is what matters
//! (NIST SP 800-63B): a minimum from config, a generous maximum, and never the account's own name.

use super::InvalidInput;

/// Longest password accepted, in characters. Far above any passphrase, low enough to bound hashing work.
pub const MAX_PASSWORD_CHARS: usize = 1024;

pub fn check_new_password(
    password: &str,
    min_length: usize,
    username: &str,
    email: Option<&str>,
) -> Result<(), InvalidInput> {
    let length = password.chars().count();
    if length < min_length {
        return Err(InvalidInput::new(format!("The password must be at least {min_length} characters long.")));
    }
    if length > MAX_PASSWORD_CHARS {
        return Err(InvalidInput::new(format!("The password may be at most {MAX_PASSWORD_CHARS} characters long.")));
    }
    let lowered = password.trim().to_lowercase();
    if lowered == username || email.is_some_and(|e| lowered == e) {
        return Err(InvalidInput::new("The password may not be the username or email address."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enforces_length_and_identity_rules() {
        assert!(check_new_password("short", 8, "alice", None).is_err());
        assert!(check_new_password("Alice-Example", 8, "alice-example", None).is_err());
        assert!(check_new_password("alice@example.com", 8, "alice", Some("alice@example.com")).is_err());
        assert!(check_new_password(&"x".repeat(1025), 8, "alice", None).is_err());
        assert!(check_new_password("correct horse battery", 8, "alice", None).is_ok());
    }
}
