//! Rules for new passwords (setup, registration, reset, the account page, `users passwd`), after NIST SP
//! 800-63B: a minimum length from config (8 by default), a generous maximum, never the account's own name or
//! address, and never a password attackers try first. "Tried first" is decided by the `zxcvbn` estimator,
//! which ships (in the binary) the frequency lists of leaked passwords, common names and words, and
//! recognises keyboard walks, repeats, sequences and dates: a password it would crack in under a million
//! guesses is refused. No composition rules (a digit, a symbol): they make passwords worse, not better.

use super::InvalidInput;

/// Longest password accepted, in characters. Far above any passphrase (NIST asks for at least 64; we promise
/// at least 128), low enough to bound hashing work.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// What a page shows beside a new-password field, before anything is submitted.
pub fn describe_policy(min_length: usize) -> String {
    format!(
        "At least {min_length} characters. A few unrelated words make a strong password; common passwords, \
         and your username or email address, are not accepted."
    )
}

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
    let email_local = email.and_then(|e| e.split('@').next());
    if lowered == username || email.is_some_and(|e| lowered == e) || email_local.is_some_and(|l| lowered == l) {
        return Err(InvalidInput::new("The password may not be the username or email address."));
    }
    let mut user_inputs = vec![username];
    user_inputs.extend(email);
    user_inputs.extend(email_local);
    let estimate = zxcvbn::zxcvbn(password, &user_inputs);
    if u8::from(estimate.score()) < 2 {
        // zxcvbn's warnings are whole sentences ("This is a very common password."): they follow ours.
        let why = estimate.feedback().and_then(|f| f.warning()).map(|w| format!(" {w}")).unwrap_or_default();
        return Err(InvalidInput::new(format!(
            "This password is too easy to guess.{why} Try a few unrelated words, or a longer phrase."
        )));
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
        assert!(check_new_password(&"correct horse battery ".repeat(5), 8, "alice", None).is_ok(), "128+ chars");
    }

    #[test]
    fn common_and_guessable_passwords_are_refused_with_a_reason() {
        for weak in
            ["password", "password1", "12345678", "qwertyuiop", "iloveyou1", "aaaaaaaaaa", "Password123", "alice1234"]
        {
            let err = check_new_password(weak, 8, "alice", Some("alice@example.com"))
                .expect_err(&format!("{weak} was accepted"));
            assert!(err.0.contains("too easy to guess"), "{weak}: {}", err.0);
            // Sentences one after another, never a sentence in parentheses inside another.
            assert!(!err.0.contains('('), "{weak}: {}", err.0);
        }
        let common = check_new_password("password1", 8, "alice", None).unwrap_err();
        assert_eq!(
            common.0,
            "This password is too easy to guess. This is a very common password. Try a few unrelated words, or a longer phrase."
        );
    }

    #[test]
    fn passphrases_pass() {
        for strong in ["correct horse battery staple", "tulip-granite-orbit", "Kx9#mQ2v!pL"] {
            assert!(check_new_password(strong, 8, "alice", Some("alice@example.com")).is_ok(), "{strong}");
        }
    }
}
