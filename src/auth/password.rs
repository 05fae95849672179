//! Password hashing and verification. New hashes are argon2id with OWASP's recommended parameters
//! (19 MiB, 2 iterations, 1 lane); bcrypt hashes written by streamlit-authenticator or htpasswd are accepted and
//! flagged for re-hashing. Hashing runs on [`HashPool`]'s threads (one per core, at a lower priority), so a
//! sign-in storm queues instead of exhausting memory, and never stalls the workers that proxy traffic.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use subtle::ConstantTimeEq;

use super::hash_pool::{HashPool, PoolGone, with_hash_memory};

/// OWASP Password Storage Cheat Sheet, argon2id option 2: m=19456 KiB, t=2, p=1.
const MEMORY_KIB: u32 = 19_456;
const ITERATIONS: u32 = 2;
const LANES: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error("the password hashing task was cancelled")]
    Cancelled,
}

/// Result of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Correct; `needs_rehash` when the stored hash is bcrypt or weaker argon2 than today's parameters.
    Valid {
        needs_rehash: bool,
    },
    Invalid,
}

#[derive(Clone)]
pub struct Passwords {
    pool: HashPool,
    /// Verified against when the account does not exist, so that costs the same as a wrong password. Made
    /// on a hashing thread as the server starts, so start-up does not wait for it.
    dummy_hash: Arc<OnceLock<String>>,
}

impl Passwords {
    pub fn new() -> Self {
        let parallelism = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let pool = HashPool::start(parallelism);
        let dummy_hash = Arc::new(OnceLock::new());
        let early = dummy_hash.clone();
        pool.spawn(move || {
            dummy_hash_in(&early);
        });
        Self { pool, dummy_hash }
    }

    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        self.run(move || hash_blocking(&password)).await?
    }

    /// Checks `password` against `stored`; `None` (unknown user or no password) still does a full
    /// verification against a dummy hash and then reports `Invalid`.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<Verification, PasswordError> {
        let dummy = self.dummy_hash.clone();
        self.run(move || match stored {
            Some(hash) => verify_blocking(&password, &hash),
            None => {
                let _ = verify_blocking(&password, dummy_hash_in(&dummy));
                Verification::Invalid
            }
        })
        .await
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, PasswordError> {
        self.pool.run(work).await.map_err(|PoolGone| PasswordError::Cancelled)
    }
}

/// The dummy hash, made by the first caller (others wait for it, so no one verifies against nothing).
fn dummy_hash_in(cell: &OnceLock<String>) -> &str {
    cell.get_or_init(|| hash_blocking("gatehouse-dummy-password").expect("hashing a constant cannot fail"))
}

impl Default for Passwords {
    fn default() -> Self {
        Self::new()
    }
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None).expect("constant argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes synchronously; for the CLI and for use inside [`Passwords`].
pub fn hash_blocking(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hashing(e.to_string()))
}

/// Highest costs a stored hash may ask for. Hashes come from imports too, and a hash that asks for 4 GiB of
/// memory or bcrypt cost 31 would let anyone who types that user's name stall or abort the server.
const MAX_BCRYPT_COST: u32 = 14;
const MAX_ARGON2_MEMORY_KIB: u32 = 256 * 1024;
const MAX_ARGON2_TIME: u32 = 16;
const MAX_ARGON2_LANES: u32 = 16;

/// Whether verifying against `stored` costs a bounded amount of work; the error says what is too costly.
pub fn check_hash_cost(stored: &str) -> Result<(), String> {
    if is_bcrypt(stored) {
        let cost =
            stored.parse::<bcrypt::HashParts>().map(|parts| parts.get_cost()).map_err(|_| "is not a bcrypt hash")?;
        return if cost <= MAX_BCRYPT_COST {
            Ok(())
        } else {
            Err(format!("has bcrypt cost {cost}; at most {MAX_BCRYPT_COST} is accepted"))
        };
    }
    let parsed = PasswordHash::new(stored).map_err(|_| "is not a PHC hash string")?;
    let params = Params::try_from(&parsed).map_err(|_| "has invalid argon2 parameters")?;
    if params.m_cost() > MAX_ARGON2_MEMORY_KIB
        || params.t_cost() > MAX_ARGON2_TIME
        || params.p_cost() > MAX_ARGON2_LANES
    {
        return Err(format!(
            "asks for m={} t={} p={}; at most m={MAX_ARGON2_MEMORY_KIB} t={MAX_ARGON2_TIME} p={MAX_ARGON2_LANES} is accepted",
            params.m_cost(),
            params.t_cost(),
            params.p_cost()
        ));
    }
    Ok(())
}

pub fn verify_blocking(password: &str, stored: &str) -> Verification {
    if let Err(problem) = check_hash_cost(stored) {
        tracing::error!(problem, "a stored password hash is refused: it would cost too much to verify");
        return Verification::Invalid;
    }
    if is_bcrypt(stored) {
        // bcrypt only looks at the first 72 bytes; refuse longer passwords rather than accept a prefix.
        if password.len() > 72 {
            return Verification::Invalid;
        }
        return match bcrypt::verify(password, stored) {
            Ok(true) => Verification::Valid { needs_rehash: true },
            _ => Verification::Invalid,
        };
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Verification::Invalid;
    };
    if !verify_argon2(password.as_bytes(), &parsed) {
        return Verification::Invalid;
    }
    Verification::Valid { needs_rehash: !is_current_argon2(&parsed) }
}

/// Recomputes an argon2 hash with the algorithm, version, parameters and salt recorded in it, in this
/// thread's reusable hash memory, and compares in constant time. (`PasswordVerifier::verify_password` does
/// the same but allocates and faults in fresh memory for every call.)
fn verify_argon2(password: &[u8], parsed: &PasswordHash<'_>) -> bool {
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(parsed) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut output = [0u8; 64];
    let Some(output) = output.get_mut(..expected.len()) else {
        return false;
    };
    let blocks = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    let computed =
        with_hash_memory(blocks, |memory| argon2.hash_password_into_with_memory(password, salt, output, memory));
    computed.is_ok() && bool::from(output.ct_eq(expected.as_bytes()))
}

fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"].iter().any(|prefix| stored.starts_with(prefix))
}

fn is_current_argon2(parsed: &PasswordHash<'_>) -> bool {
    if parsed.algorithm.as_str() != "argon2id" {
        return false;
    }
    match Params::try_from(parsed) {
        Ok(params) => params.m_cost() >= MEMORY_KIB && params.t_cost() >= ITERATIONS && params.p_cost() >= LANES,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_round_trip_with_owasp_parameters() {
        let hash = hash_blocking("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert_eq!(verify_blocking("correct horse", &hash), Verification::Valid { needs_rehash: false });
        assert_eq!(verify_blocking("wrong horse", &hash), Verification::Invalid);
    }

    #[test]
    fn bcrypt_variants_verify_and_ask_for_rehash() {
        let hash = bcrypt::hash("secret-pass", 4).unwrap();
        for prefix in ["$2a$", "$2b$", "$2y$"] {
            let variant = format!("{prefix}{}", &hash[4..]);
            assert_eq!(
                verify_blocking("secret-pass", &variant),
                Verification::Valid { needs_rehash: true },
                "{prefix}"
            );
            assert_eq!(verify_blocking("other-pass", &variant), Verification::Invalid);
        }
    }

    #[test]
    fn weaker_argon2_asks_for_rehash_and_garbage_is_invalid() {
        let weak = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(8, 1, 1, None).unwrap())
            .hash_password(b"pw-123456", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert_eq!(verify_blocking("pw-123456", &weak), Verification::Valid { needs_rehash: true });
        assert_eq!(verify_blocking("pw", "not a hash"), Verification::Invalid);
        assert_eq!(verify_blocking("pw", ""), Verification::Invalid);
    }

    #[test]
    fn hashes_that_would_cost_too_much_are_refused() {
        let heavy_argon = "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
        assert!(check_hash_cost(heavy_argon).is_err());
        assert_eq!(verify_blocking("anything", heavy_argon), Verification::Invalid);
        let heavy_bcrypt = bcrypt::hash("x", 4).unwrap().replacen("$04$", "$31$", 1);
        assert!(check_hash_cost(&heavy_bcrypt).unwrap_err().contains("cost 31"));
        assert!(check_hash_cost(&bcrypt::hash("x", 4).unwrap()).is_ok());
        assert!(check_hash_cost(&hash_blocking("x").unwrap()).is_ok());
    }
}
