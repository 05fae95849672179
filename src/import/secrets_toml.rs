//! Streamlit `secrets.toml` with a `[passwords]` table (`username = "password"`), the pattern Streamlit's
//! own documentation shows for simple password protection, and its first recipe, one top-level `password =
//! "..."` for everybody, which becomes Gatehouse's shared password. The values are usually plaintext.

use super::{ImportProblem, Parsed, Password, Present, classify_password, row};

pub fn parse(text: &str) -> Result<Parsed, ImportProblem> {
    let document: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
        ImportProblem::new(line, format!("not valid TOML: {}", e.message()))
    })?;
    let shared_password = match document.get("password") {
        None => None,
        Some(value) => {
            let line = top_level_line(text, "password");
            let raw =
                value.as_str().ok_or_else(|| ImportProblem::new(line, "the top-level 'password' is not a string"))?;
            match classify_password(raw) {
                Ok(Password::None) => return Err(ImportProblem::new(line, "the top-level 'password' is empty")),
                Ok(password) => Some(password),
                Err(message) => return Err(ImportProblem::new(line, format!("the top-level 'password' {message}"))),
            }
        }
    };
    let mut parsed = Parsed { present: Present::default(), shared_password, ..Parsed::default() };
    let Some(passwords) = document.get("passwords") else {
        if parsed.shared_password.is_some() {
            return Ok(parsed);
        }
        return Err(ImportProblem::new(1, "no [passwords] table and no top-level password in the file"));
    };
    let table = passwords.as_table().ok_or_else(|| ImportProblem::new(1, "'passwords' is not a table"))?;
    for (username, value) in table {
        let line = key_line(text, username);
        let password = value
            .as_str()
            .ok_or_else(|| ImportProblem::new(line, format!("the password of '{username}' is not a string")))?;
        parsed.rows.push(row(line, username, None, "", &[], password)?);
    }
    parsed.rows.sort_by_key(|r| r.line);
    Ok(parsed)
}

/// The line of `key = ...` before the first table header.
fn top_level_line(text: &str, key: &str) -> usize {
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            break;
        }
        if trimmed.split('=').next().unwrap_or("").trim().trim_matches('"') == key {
            return index + 1;
        }
    }
    1
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line where `key = ...` appears inside the `[passwords]` table.
fn key_line(text: &str, key: &str) -> usize {
    let mut in_table = false;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_table = trimmed == "[passwords]";
            continue;
        }
        let name = trimmed.split('=').next().unwrap_or("").trim().trim_matches('"');
        if in_table && name == key {
            return index + 1;
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_passwords_table_with_line_numbers() {
        let text =
            "[connections]\nurl = \"x\"\n\n[passwords]\n# comment\nalice_foo = \"streamlit123\"\nbob = \"hunter22\"\n";
        let parsed = parse(text).unwrap();
        let lines: Vec<_> = parsed.rows.iter().map(|r| (r.username.as_str().to_owned(), r.line)).collect();
        assert_eq!(lines, [("alice_foo".to_owned(), 6), ("bob".to_owned(), 7)]);
        assert_eq!(parsed.rows[0].password, Password::Plain("streamlit123".into()));
    }

    #[test]
    fn problems_name_their_line() {
        assert_eq!(parse("[passwords]\nalice = 3\n").unwrap_err().line, 2);
        assert_eq!(parse("[passwords]\n\"bad name\" = \"x\"\n").unwrap_err().line, 2);
        assert!(parse("[other]\n").unwrap_err().message.contains("[passwords]"));
        assert_eq!(parse("[x]\n[passwords]\nalice = = \"x\"\n").unwrap_err().line, 3);
    }

    #[test]
    fn a_top_level_password_is_the_shared_password() {
        let only = parse("# Streamlit's recipe\npassword = \"streamlit123\"\n").unwrap();
        assert_eq!(only.shared_password, Some(Password::Plain("streamlit123".into())));
        assert!(only.rows.is_empty());
        let both = parse("password = \"$2b$12$short\"\n[passwords]\nbob = \"x\"\n");
        assert!(matches!(both.unwrap_err().message.as_str(), m if m.contains("bcrypt")), "a broken hash is refused");
        let with_table = parse("password = \"shared one\"\n[passwords]\nbob = \"hunter22\"\n").unwrap();
        assert_eq!(with_table.shared_password, Some(Password::Plain("shared one".into())));
        assert_eq!(with_table.rows.len(), 1);
        assert_eq!(parse("\n\npassword = 3\n").unwrap_err().line, 3);
        assert!(parse("password = \"\"\n").unwrap_err().message.contains("empty"));
        assert!(parse("[other]\n").unwrap_err().message.contains("no top-level password"));
    }
}
