//! The `[signup]` and `[mail]` sections: who may create an account, and how Gatehouse sends the messages that
//! verify addresses and recover accounts.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::{ConfigReader, Secret};
use crate::domain::Email;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignupMode {
    /// Only administrators (CLI, admin console) create accounts.
    Closed,
    /// People with an invitation link, or an address in `signup.invited_emails`, may register.
    Invite,
    /// Anyone may register (optionally only with an address in `signup.allowed_email_domains`).
    Open,
}

#[derive(Debug, Clone)]
pub struct SignupConfig {
    pub mode: SignupMode,
    /// Lower-case domains (`example.com`); empty means any. Applies to open registration.
    pub allowed_email_domains: Vec<String>,
    /// Addresses that may register in `invite` mode without an invitation link.
    pub invited_emails: Vec<Email>,
    /// Registrations stay pending (cannot sign in) until their address is verified. Always on in `invite`
    /// mode: there the address is what grants the right to an account.
    pub require_email_verification: bool,
    /// How long a registration may wait for verification before it is deleted.
    pub pending_lifetime: Duration,
    pub invite_lifetime: Duration,
}

impl SignupConfig {
    pub fn verification_required(&self) -> bool {
        self.require_email_verification || self.mode == SignupMode::Invite
    }

    /// Whether open registration accepts this address's domain.
    pub fn domain_allowed(&self, email: &Email) -> bool {
        let domain = email.as_str().rsplit('@').next().unwrap_or_default();
        self.allowed_email_domains.is_empty() || self.allowed_email_domains.iter().any(|d| d == domain)
    }
}

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// `smtps://`: TLS from the first byte (port 465).
    Implicit,
    /// `smtp://`: STARTTLS, required (port 587).
    StartTls,
    /// `smtp://...?tls=none`: plain text, for a relay on the same machine or a test server.
    None,
}

#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<Secret<String>>,
}

#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `None`: messages are written to `outbox` as `.eml` files (development).
    pub smtp: Option<SmtpSettings>,
    /// `From:` of every message, e.g. `Gatehouse <gatehouse@example.com>`.
    pub from: String,
    pub reply_to: Option<String>,
    pub outbox: PathBuf,
    /// A folder whose files replace the bundled mail templates of the same name.
    pub templates: Option<PathBuf>,
    /// Per SMTP connection and command.
    pub timeout: Duration,
}

pub(super) fn read_signup(r: &mut ConfigReader) -> SignupConfig {
    let mode = r
        .parsed("signup.mode", |s| match s {
            "closed" => Ok(SignupMode::Closed),
            "invite" => Ok(SignupMode::Invite),
            "open" => Ok(SignupMode::Open),
            other => Err(format!("'{other}' is not a sign-up mode; use \"closed\", \"invite\" or \"open\"")),
        })
        .unwrap_or(SignupMode::Closed);
    let mut allowed_email_domains = Vec::new();
    for raw in r.string_list("signup.allowed_email_domains").unwrap_or_default() {
        let domain = raw.trim().trim_start_matches('@').to_lowercase();
        if Email::parse(&format!("x@{domain}")).is_err() {
            r.problem("signup.allowed_email_domains", format!("'{raw}' is not a domain like example.com"));
        } else {
            allowed_email_domains.push(domain);
        }
    }
    let mut invited_emails = Vec::new();
    for raw in r.string_list("signup.invited_emails").unwrap_or_default() {
        match Email::parse(&raw) {
            Ok(email) => invited_emails.push(email),
            Err(err) => r.problem("signup.invited_emails", err.0),
        }
    }
    let require_email_verification = r.value::<bool>("signup.require_email_verification").unwrap_or(true);
    let pending_lifetime = r.duration("signup.pending_lifetime").unwrap_or(Duration::from_secs(24 * 3600));
    let invite_lifetime = r.duration("signup.invite_lifetime").unwrap_or(Duration::from_secs(7 * 86400));
    for (key, value) in [("signup.pending_lifetime", pending_lifetime), ("signup.invite_lifetime", invite_lifetime)] {
        if value < Duration::from_secs(3600) {
            r.problem(key, "must be at least one hour (people do not always read mail at once)");
        }
    }
    if mode != SignupMode::Open && !allowed_email_domains.is_empty() {
        r.problem("signup.allowed_email_domains", "only applies to signup.mode = \"open\"");
    }
    if mode == SignupMode::Open && !allowed_email_domains.is_empty() && !require_email_verification {
        r.problem(
            "signup.allowed_email_domains",
            "needs signup.require_email_verification = true: without it anyone can type an address at these domains",
        );
    }
    if mode != SignupMode::Invite && !invited_emails.is_empty() {
        r.problem("signup.invited_emails", "only applies to signup.mode = \"invite\"");
    }
    SignupConfig {
        mode,
        allowed_email_domains,
        invited_emails,
        require_email_verification,
        pending_lifetime,
        invite_lifetime,
    }
}

pub(super) fn read_mail(r: &mut ConfigReader, public_url: Option<&Url>) -> MailConfig {
    let smtp = r.parsed("mail.smtp_url", parse_smtp_url);
    let default_from = format!(
        "Gatehouse <gatehouse@{}>",
        public_url.and_then(Url::host_str).filter(|h| h.contains('.')).unwrap_or("localhost")
    );
    let from = r.parsed("mail.from", parse_mailbox).unwrap_or(default_from);
    let reply_to = r.parsed("mail.reply_to", parse_mailbox);
    let outbox = r.string("mail.outbox").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("gatehouse-outbox"));
    let templates = r.string("mail.templates").map(PathBuf::from);
    if let Some(dir) = &templates
        && !dir.is_dir()
    {
        r.problem("mail.templates", format!("'{}' is not a folder", dir.display()));
    }
    let timeout = r.duration("mail.timeout").unwrap_or(Duration::from_secs(10));
    MailConfig { smtp, from, reply_to, outbox, templates, timeout }
}

fn parse_mailbox(raw: &str) -> Result<String, String> {
    raw.parse::<lettre::message::Mailbox>()
        .map(|m| m.to_string())
        .map_err(|_| format!("'{raw}' is not an address like \"Gatehouse <gatehouse@example.com>\""))
}

/// `smtp://[USER[:PASSWORD]@]HOST[:PORT][?tls=none]` (STARTTLS, required) or `smtps://...` (implicit TLS).
/// Error messages never repeat the URL: it may hold a password.
pub fn parse_smtp_url(raw: &str) -> Result<SmtpSettings, String> {
    let url = Url::parse(raw).map_err(|e| {
        format!("is not a URL ({e}); write it like smtp://user:password@mail.example.com:587 or smtps://...")
    })?;
    let tls_none = url.query_pairs().any(|(k, v)| k == "tls" && v == "none");
    if url.query_pairs().any(|(k, v)| k != "tls" || v != "none") {
        return Err("the only query parameter understood is ?tls=none".into());
    }
    let (tls, default_port) = match (url.scheme(), tls_none) {
        ("smtps", false) => (SmtpTls::Implicit, 465),
        ("smtp", false) => (SmtpTls::StartTls, 587),
        ("smtp", true) => (SmtpTls::None, 25),
        ("smtps", true) => return Err("smtps:// is TLS; ?tls=none contradicts it".into()),
        (other, _) => return Err(format!("scheme '{other}' is not smtp:// or smtps://")),
    };
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or("has no host")?.to_owned();
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let username = (!url.username().is_empty()).then(|| decode(url.username()));
    let password = url.password().map(|p| Secret::new(decode(p)));
    if password.is_some() && tls == SmtpTls::None {
        return Err("would send the SMTP password unencrypted (?tls=none); use smtp:// (STARTTLS) or smtps://".into());
    }
    Ok(SmtpSettings { host, port: url.port().unwrap_or(default_port), tls, username, password })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_choose_tls_port_and_credentials() {
        let s = parse_smtp_url("smtp://mailer%40corp:p%40ss@mail.example.com").unwrap();
        assert_eq!((s.host.as_str(), s.port, s.tls), ("mail.example.com", 587, SmtpTls::StartTls));
        assert_eq!(s.username.as_deref(), Some("mailer@corp"));
        assert_eq!(s.password.unwrap().expose(), "p@ss");
        let s = parse_smtp_url("smtps://mail.example.com").unwrap();
        assert_eq!((s.port, s.tls), (465, SmtpTls::Implicit));
        let s = parse_smtp_url("smtp://127.0.0.1:2525?tls=none").unwrap();
        assert_eq!((s.port, s.tls), (2525, SmtpTls::None));
    }

    #[test]
    fn bad_smtp_urls_are_explained_without_repeating_the_password() {
        for bad in [
            "mail.example.com",
            "http://mail.example.com",
            "smtps://x@mail.example.com?tls=none",
            "smtp://u:secret@mail.example.com?tls=none",
            "smtp://mail.example.com?verify=no",
        ] {
            let message = parse_smtp_url(bad).unwrap_err();
            assert!(!message.contains("secret"), "{message}");
        }
    }
}
