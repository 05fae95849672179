//! Apache `htpasswd` files: `username:hash` per line, `#` comments. Only bcrypt (`htpasswd -B`) can be
//! verified, so other hash kinds stop the import at their line.

use super::{ImportProblem, Parsed, Present, row};

pub fn parse(text: &str) -> Result<Parsed, ImportProblem> {
    let mut parsed = Parsed { present: Present::default(), ..Parsed::default() };
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (username, hash) =
            line.split_once(':').ok_or_else(|| ImportProblem::new(number, "expected username:hash"))?;
        if !["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
            return Err(ImportProblem::new(
                number,
                format!("the hash of '{username}' is not bcrypt; recreate the file with `htpasswd -B`"),
            ));
        }
        parsed.rows.push(row(number, username, None, "", &[], hash)?);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::Password;

    #[test]
    fn reads_bcrypt_lines_and_refuses_other_hashes_with_their_line() {
        let hash = bcrypt::hash("secret", 4).unwrap().replacen("$2b$", "$2y$", 1);
        let parsed = parse(&format!("# users\n\nalice:{hash}\n")).unwrap();
        assert_eq!(parsed.rows.len(), 1);
        assert_eq!(parsed.rows[0].line, 3);
        assert_eq!(parsed.rows[0].password, Password::Hash(hash.clone()));
        let err = parse(&format!("alice:{hash}\nbob:$apr1$xyz$abc\n")).unwrap_err();
        assert_eq!(err.line, 2);
        assert_eq!(parse("just-a-name\n").unwrap_err().line, 1);
    }
}
