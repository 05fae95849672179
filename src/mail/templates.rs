//! Mail templates: a plain-text and an HTML body per message, bundled in the binary and replaceable one by
//! one from the folder `[mail] templates` names (same file names). The text template starts with a
//! `Subject: ...` line and a blank line, so one file holds everything a translator or brand owner edits.

use std::path::Path;

use minijinja::Environment;
use serde::Serialize;

/// Every message Gatehouse sends, by template name.
pub const MESSAGES: &[&str] = &[
    "verify_email",
    "confirm_new_email",
    "email_changed",
    "already_registered",
    "reset_password",
    "password_changed",
    "username_reminder",
    "invite",
];

const BUNDLED: &[(&str, &str)] = &[
    ("layout.html", include_str!("../../templates/mail/layout.html")),
    ("verify_email.txt", include_str!("../../templates/mail/verify_email.txt")),
    ("verify_email.html", include_str!("../../templates/mail/verify_email.html")),
    ("confirm_new_email.txt", include_str!("../../templates/mail/confirm_new_email.txt")),
    ("confirm_new_email.html", include_str!("../../templates/mail/confirm_new_email.html")),
    ("email_changed.txt", include_str!("../../templates/mail/email_changed.txt")),
    ("email_changed.html", include_str!("../../templates/mail/email_changed.html")),
    ("already_registered.txt", include_str!("../../templates/mail/already_registered.txt")),
    ("already_registered.html", include_str!("../../templates/mail/already_registered.html")),
    ("reset_password.txt", include_str!("../../templates/mail/reset_password.txt")),
    ("reset_password.html", include_str!("../../templates/mail/reset_password.html")),
    ("password_changed.txt", include_str!("../../templates/mail/password_changed.txt")),
    ("password_changed.html", include_str!("../../templates/mail/password_changed.html")),
    ("username_reminder.txt", include_str!("../../templates/mail/username_reminder.txt")),
    ("username_reminder.html", include_str!("../../templates/mail/username_reminder.html")),
    ("invite.txt", include_str!("../../templates/mail/invite.txt")),
    ("invite.html", include_str!("../../templates/mail/invite.html")),
];

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub struct MailTemplates {
    env: Environment<'static>,
}

impl MailTemplates {
    /// The bundled templates, with any file of the same name in `overrides` used instead. Every template is
    /// compiled here, so a broken override stops the start with its file name rather than a later send.
    pub fn load(overrides: Option<&Path>) -> anyhow::Result<Self> {
        let mut env = Environment::new();
        for (name, source) in BUNDLED {
            let custom = overrides.map(|dir| dir.join(name)).filter(|path| path.is_file());
            let source = match custom {
                Some(path) => std::fs::read_to_string(&path)
                    .map_err(|e| anyhow::anyhow!("cannot read mail template {}: {e}", path.display()))?,
                None => (*source).to_owned(),
            };
            env.add_template_owned(*name, source)
                .map_err(|e| anyhow::anyhow!("mail template {name} does not compile: {e}"))?;
        }
        let templates = Self { env };
        for name in MESSAGES {
            let (subject, _) = templates.text_parts(name, &minijinja::context! {})?;
            if subject.trim().is_empty() {
                anyhow::bail!("mail template {name}.txt must start with a 'Subject: ...' line and a blank line");
            }
        }
        Ok(templates)
    }

    pub fn render<C: Serialize>(&self, name: &str, context: &C) -> anyhow::Result<Rendered> {
        let (subject, text) = self.text_parts(name, context)?;
        let html = self.env.get_template(&format!("{name}.html"))?.render(context)?;
        Ok(Rendered { subject, text, html })
    }

    fn text_parts<C: Serialize>(&self, name: &str, context: &C) -> anyhow::Result<(String, String)> {
        let text = self.env.get_template(&format!("{name}.txt"))?.render(context)?;
        let text = text.trim_start();
        let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
        let subject = head.strip_prefix("Subject:").unwrap_or_default().trim();
        // A subject is one header line: anything that could start another header is cut off.
        let subject = subject.lines().next().unwrap_or_default().to_owned();
        Ok((subject, body.trim_end().to_owned() + "\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> minijinja::Value {
        minijinja::context! {
            name => "Ada <script>", username => "ada", code => "123456", link => "https://x.test/l?token=abc",
            minutes => 30, new_email => "new@example.com", inviter => "admin", days => 7, app_url => "https://x.test/",
            usernames => vec!["ada"],
        }
    }

    #[test]
    fn every_bundled_message_renders_with_a_subject_and_both_bodies() {
        let templates = MailTemplates::load(None).unwrap();
        for name in MESSAGES {
            let rendered = templates.render(name, &context()).unwrap();
            assert!(!rendered.subject.is_empty(), "{name}");
            assert!(!rendered.text.contains("Subject:"), "{name}");
            assert!(rendered.html.contains("<html"), "{name}");
            assert!(!rendered.html.contains("<script>"), "{name}: HTML is escaped");
        }
    }

    #[test]
    fn a_file_in_the_override_folder_replaces_the_bundled_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("reset_password.txt"), "Subject: Reset at ACME\n\nGo to {{ link }}\n").unwrap();
        let templates = MailTemplates::load(Some(dir.path())).unwrap();
        let rendered = templates.render("reset_password", &context()).unwrap();
        assert_eq!(rendered.subject, "Reset at ACME");
        assert_eq!(rendered.text, "Go to https://x.test/l?token=abc\n");
    }

    #[test]
    fn a_broken_override_stops_the_start_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("invite.html"), "{% if %}").unwrap();
        let err = MailTemplates::load(Some(dir.path())).err().unwrap().to_string();
        assert!(err.contains("invite.html"), "{err}");
        std::fs::write(dir.path().join("invite.html"), "ok").unwrap();
        std::fs::write(dir.path().join("invite.txt"), "no subject line").unwrap();
        assert!(MailTemplates::load(Some(dir.path())).is_err());
    }
}
