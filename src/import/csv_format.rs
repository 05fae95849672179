//! CSV with a header row. `username` is required; `email`, `name`, `roles` (separated by `;`, `|`, `,` or
//! spaces), `password_hash` and `password` (plaintext) and `disabled` (`true`/`false`) are optional. The
//! other status columns that `users export` writes (`email_verified`, `created_at`, `last_login_at`,
//! `login_count`) are accepted and ignored, so an export can be imported elsewhere (disabled accounts stay
//! disabled); any other column is refused, since it would otherwise be silently lost.

use super::{ImportProblem, Parsed, Present, row};

const KNOWN: [&str; 7] = ["username", "email", "name", "roles", "password_hash", "password", "disabled"];
const IGNORED: [&str; 4] = ["email_verified", "created_at", "last_login_at", "login_count"];

pub fn parse(text: &str) -> Result<Parsed, ImportProblem> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).flexible(false).from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| ImportProblem::new(1, format!("the header row cannot be read: {e}")))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_lowercase())
        .collect();
    for header in &headers {
        if !KNOWN.contains(&header.as_str()) && !IGNORED.contains(&header.as_str()) {
            return Err(ImportProblem::new(
                1,
                format!("unknown column '{header}' (known: {}, {})", KNOWN.join(", "), IGNORED.join(", ")),
            ));
        }
    }
    let column = |name: &str| headers.iter().position(|h| h == name);
    let username_at = column("username").ok_or_else(|| ImportProblem::new(1, "the header has no 'username' column"))?;
    let (email_at, name_at, roles_at) = (column("email"), column("name"), column("roles"));
    let (hash_at, plain_at, disabled_at) = (column("password_hash"), column("password"), column("disabled"));
    let present = Present {
        email: email_at.is_some(),
        name: name_at.is_some(),
        roles: roles_at.is_some(),
        disabled: disabled_at.is_some(),
    };
    let mut parsed = Parsed { present, ..Parsed::default() };
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
            ImportProblem::new(line, format!("not valid CSV: {e}"))
        })?;
        let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
        let get = |at: Option<usize>| at.and_then(|i| record.get(i)).unwrap_or("");
        let roles: Vec<String> = get(roles_at)
            .split(|c: char| c == ';' || c == '|' || c == ',' || c.is_whitespace())
            .map(str::to_owned)
            .collect();
        let (hash, plain) = (get(hash_at), get(plain_at));
        if !hash.is_empty() && !plain.is_empty() {
            return Err(ImportProblem::new(line, "has both password_hash and password; keep one"));
        }
        if !hash.is_empty() && matches!(super::classify_password(hash), Ok(super::Password::Plain(_))) {
            return Err(ImportProblem::new(line, "password_hash is not a bcrypt or argon2 hash"));
        }
        let password = if hash.is_empty() { plain } else { hash };
        let disabled = match get(disabled_at).to_ascii_lowercase().as_str() {
            "" | "false" | "0" | "no" => false,
            "true" | "1" | "yes" => true,
            other => return Err(ImportProblem::new(line, format!("disabled is '{other}'; use true or false"))),
        };
        let email = Some(get(email_at));
        let mut imported = row(line, record.get(username_at).unwrap_or(""), email, get(name_at), &roles, password)?;
        imported.disabled = disabled;
        parsed.rows.push(imported);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::Password;

    #[test]
    fn reads_columns_by_name_with_line_numbers() {
        let text =
            "username,email,name,roles,password\nalice,alice@example.com,Alice A,admin;viewer,hunter22\nbob,,,,\n";
        let parsed = parse(text).unwrap();
        assert_eq!(parsed.rows.len(), 2);
        assert_eq!(parsed.rows[0].line, 2);
        assert_eq!(parsed.rows[0].roles.len(), 2);
        assert_eq!(parsed.rows[0].password, Password::Plain("hunter22".into()));
        assert_eq!(parsed.rows[1].password, Password::None);
        assert!(parsed.rows[1].email.is_none());
    }

    #[test]
    fn bad_rows_and_columns_are_refused_with_their_line() {
        assert_eq!(parse("username,colour\na,red\n").unwrap_err().line, 1);
        assert_eq!(parse("email\nx@example.com\n").unwrap_err().line, 1);
        assert_eq!(parse("username,email\nalice,a@example.com\nbob,not-an-email\n").unwrap_err().line, 3);
        assert_eq!(parse("username,password_hash\nalice,plaintext\n").unwrap_err().line, 2);
        assert_eq!(parse("username,email\nalice\n").unwrap_err().line, 2);
    }
}
