//! `gatehouse hash`: a password (stdin, or asked twice on a terminal) -> PHC argon2id string, for config
//! files (the shared password) and imports. It must be as long as `[password] min_length` asks by default:
//! a hash hides the password's length from every later check.

use std::io::IsTerminal;

use super::{CliError, read_new_password};
use crate::auth::password::hash_blocking;

/// The default `[password] min_length`.
const SHORTEST: usize = 8;

pub fn hash() -> Result<(), CliError> {
    let from_stdin = !std::io::stdin().is_terminal();
    let password = read_new_password(from_stdin, |password| {
        if password.chars().count() < SHORTEST {
            Err(format!("The password is shorter than {SHORTEST} characters."))
        } else {
            Ok(())
        }
    })?;
    let hash = hash_blocking(&password).map_err(|e| CliError::Runtime(e.into()))?;
    println!("{hash}");
    Ok(())
}
