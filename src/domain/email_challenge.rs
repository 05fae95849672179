//! Proving an email address: one message carries a 6-digit code (typed on the page that asked for it) and a
//! link (clicked from the mailbox); either one verifies. Both are stored hashed. A code has only a million
//! values, so it is bound to its challenge (the hash includes the challenge id), wrong guesses are counted
//! and a challenge dies after [`MAX_CODE_ATTEMPTS`] of them or [`CHALLENGE_LIFETIME`].

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

use super::{Email, TokenHash, UserId};

pub const CHALLENGE_LIFETIME: Duration = Duration::minutes(30);
pub const MAX_CODE_ATTEMPTS: i64 = 5;

/// What proving the address achieves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengePurpose {
    /// Finishes a self-registration: the pending account becomes active.
    Registration,
    /// Replaces the account's email with the proven one.
    EmailChange,
}

impl ChallengePurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengePurpose::Registration => "registration",
            ChallengePurpose::EmailChange => "email_change",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "registration" => Some(ChallengePurpose::Registration),
            "email_change" => Some(ChallengePurpose::EmailChange),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailChallenge {
    pub id: String,
    /// `None` for a decoy (see `accounts::registration`): it counts attempts and expires like a real
    /// challenge, but nothing is mailed for it and it never completes.
    pub user_id: Option<UserId>,
    pub purpose: ChallengePurpose,
    pub email: Email,
    pub code_hash: String,
    pub link_hash: TokenHash,
    pub attempts: i64,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// The secrets of a new challenge, to be mailed once.
pub struct ChallengeSecrets {
    pub code: String,
    pub link_token: String,
}

impl EmailChallenge {
    pub fn new(
        user_id: Option<UserId>,
        purpose: ChallengePurpose,
        email: Email,
        now: OffsetDateTime,
    ) -> (Self, ChallengeSecrets) {
        let id = crate::random::hex_token(16);
        let code = format!("{:06}", crate::random::below(1_000_000));
        let link_token = crate::random::url_token(32);
        let challenge = Self {
            code_hash: code_hash(&id, &code),
            id,
            user_id,
            purpose,
            email,
            link_hash: TokenHash::of(&link_token),
            attempts: 0,
            created_at: now,
            expires_at: now + CHALLENGE_LIFETIME,
        };
        (challenge, ChallengeSecrets { code, link_token })
    }

    /// Whether the challenge can still be answered.
    pub fn is_open_at(&self, now: OffsetDateTime) -> bool {
        now < self.expires_at && self.attempts < MAX_CODE_ATTEMPTS
    }

    pub fn is_decoy(&self) -> bool {
        self.user_id.is_none()
    }

    /// Compares a typed code in constant time. Spaces and dashes people add when copying are ignored.
    pub fn code_matches(&self, typed: &str) -> bool {
        let typed: String = typed.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
        if typed.len() != 6 || !typed.chars().all(|c| c.is_ascii_digit()) {
            return false;
        }
        code_hash(&self.id, &typed).as_bytes().ct_eq(self.code_hash.as_bytes()).into()
    }
}

fn code_hash(challenge_id: &str, code: &str) -> String {
    hex::encode(Sha256::digest(format!("gatehouse-email-code:{challenge_id}:{code}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge() -> (EmailChallenge, ChallengeSecrets) {
        EmailChallenge::new(
            Some(UserId("u1".into())),
            ChallengePurpose::Registration,
            Email::parse("a@example.com").unwrap(),
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn codes_are_six_digits_and_stored_only_hashed() {
        let (challenge, secrets) = challenge();
        assert_eq!(secrets.code.len(), 6);
        assert!(secrets.code.chars().all(|c| c.is_ascii_digit()));
        assert!(!challenge.code_hash.contains(&secrets.code));
        assert_eq!(challenge.link_hash, TokenHash::of(&secrets.link_token));
    }

    #[test]
    fn only_the_right_code_matches_and_copy_noise_is_ignored() {
        let (challenge, secrets) = challenge();
        assert!(challenge.code_matches(&secrets.code));
        assert!(challenge.code_matches(&format!(" {}-{} ", &secrets.code[..3], &secrets.code[3..])));
        let wrong = format!("{:06}", (secrets.code.parse::<u32>().unwrap() + 1) % 1_000_000);
        assert!(!challenge.code_matches(&wrong));
        assert!(!challenge.code_matches(""));
        assert!(!challenge.code_matches("12345a"));
    }

    #[test]
    fn a_code_is_bound_to_its_challenge() {
        let (first, secrets) = challenge();
        let (mut second, _) = challenge();
        second.code_hash = code_hash(&second.id, &secrets.code);
        assert!(first.code_matches(&secrets.code));
        assert_ne!(first.code_hash, second.code_hash, "the same code hashes differently per challenge");
    }

    #[test]
    fn challenges_close_after_their_lifetime_or_too_many_attempts() {
        let (mut challenge, _) = challenge();
        assert!(challenge.is_open_at(challenge.created_at + Duration::minutes(29)));
        assert!(!challenge.is_open_at(challenge.created_at + CHALLENGE_LIFETIME));
        challenge.attempts = MAX_CODE_ATTEMPTS;
        assert!(!challenge.is_open_at(challenge.created_at));
    }
}
