//! streamlit-authenticator's `config.yaml`: users under `credentials.usernames`, each with `email`,
//! `first_name`/`last_name` (or the older `name`), `password` (a bcrypt hash from its `Hasher`, or plaintext
//! when `auto_hash` was meant to hash it) and `roles`. Its bookkeeping fields (`logged_in`,
//! `failed_login_attempts`, `password_hint`) have no meaning here and are ignored.

use serde_yaml_ng::Value;

use super::{ImportProblem, Parsed, Present, row};

pub fn parse(text: &str) -> Result<Parsed, ImportProblem> {
    let document: Value = serde_yaml_ng::from_str(text)
        .map_err(|e| ImportProblem::new(e.location().map(|l| l.line()).unwrap_or(1), format!("not valid YAML: {e}")))?;
    let users =
        document.get("credentials").and_then(|c| c.get("usernames")).and_then(Value::as_mapping).ok_or_else(|| {
            ImportProblem::new(1, "no credentials.usernames section (is this streamlit-authenticator's config.yaml?)")
        })?;
    let present = Present { email: true, name: true, roles: true, disabled: false };
    let mut parsed = Parsed { present, ..Parsed::default() };
    for (key, fields) in users {
        let username = scalar(key).unwrap_or_default();
        let line = key_line(text, &username);
        let field = |name: &str| fields.get(name).and_then(scalar);
        let name = match (field("first_name"), field("last_name"), field("name")) {
            (first, last, _) if first.is_some() || last.is_some() => {
                format!("{} {}", first.unwrap_or_default(), last.unwrap_or_default()).trim().to_owned()
            }
            (_, _, name) => name.unwrap_or_default(),
        };
        let roles: Vec<String> = match fields.get("roles") {
            Some(Value::Sequence(items)) => items.iter().filter_map(scalar).collect(),
            Some(other) => scalar(other).map(|r| vec![r]).unwrap_or_default(),
            None => Vec::new(),
        };
        let email = field("email");
        let password = field("password").unwrap_or_default();
        parsed.rows.push(row(line, &username, email.as_deref(), &name, &roles, &password)?);
    }
    if document.get("pre-authorized").is_some() || document.get("pre_authorized").is_some() {
        parsed.warnings.push(
            "the file's pre-authorized emails are not imported: list them in [signup] invited_emails instead".into(),
        );
    }
    Ok(parsed)
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The line of `username:` under `usernames:` (YAML values carry no positions once parsed).
fn key_line(text: &str, username: &str) -> usize {
    let mut in_usernames = false;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with("usernames:") {
            in_usernames = true;
            continue;
        }
        let key = trimmed.strip_suffix(':').unwrap_or("").trim_matches(|c| c == '"' || c == '\'');
        if in_usernames && key == username {
            return index + 1;
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::Password;

    #[test]
    fn reads_users_names_roles_and_hashes() {
        let hash = bcrypt::hash("abc", 4).unwrap();
        let text = format!(
            "cookie:\n  name: x\ncredentials:\n  usernames:\n    jsmith:\n      email: jsmith@gmail.com\n      \
             failed_login_attempts: 0\n      first_name: John\n      last_name: Smith\n      logged_in: False\n      \
             password: '{hash}'\n      roles:\n      - admin\n      - editor\n    rbriggs:\n      email: rbriggs@gmail.com\n      \
             name: Rebecca Briggs\n      password: def\n"
        );
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed.rows.len(), 2);
        let john = &parsed.rows[0];
        assert_eq!((john.username.as_str(), john.line, john.display_name.as_str()), ("jsmith", 5, "John Smith"));
        assert_eq!(john.roles.len(), 2);
        assert_eq!(john.password, Password::Hash(hash));
        assert_eq!(parsed.rows[1].display_name, "Rebecca Briggs");
        assert_eq!(parsed.rows[1].password, Password::Plain("def".into()));
        assert_eq!(parsed.rows[1].line, 15);
    }

    #[test]
    fn problems_name_their_line() {
        let err = parse("credentials:\n  usernames:\n    ok:\n      email: a@b.co\n    bad name:\n      email: x\n")
            .unwrap_err();
        assert_eq!(err.line, 5);
        assert!(parse("cookie: {}\n").unwrap_err().message.contains("credentials.usernames"));
        assert_eq!(parse("credentials:\n  usernames: [\n").unwrap_err().line, 3);
    }
}
