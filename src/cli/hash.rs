//! `gatehouse hash`: a password (stdin, or a prompt) -> PHC argon2id string, for config files and imports.

use std::io::{IsTerminal, Read};

use super::CliError;
use crate::auth::password::hash_blocking;

pub fn hash() -> Result<(), CliError> {
    let password = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Password: ").map_err(|e| CliError::usage(e.to_string()))?
    } else {
        let mut input = String::new();
        std::io::stdin()
            .read_to_string(&mut input)
            .map_err(|e| CliError::usage(format!("could not read stdin: {e}")))?;
        input.trim_end_matches(['\n', '\r']).to_owned()
    };
    if password.is_empty() {
        return Err(CliError::usage("the password is empty"));
    }
    let hash = hash_blocking(&password).map_err(|e| CliError::Runtime(e.into()))?;
    println!("{hash}");
    Ok(())
}
