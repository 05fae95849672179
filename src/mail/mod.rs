//! Outgoing mail: verification codes, reset links, reminders, invitations and notices.
//!
//! Pages never wait for delivery: [`Mailer::send`] renders the message (so template problems surface at
//! once) and queues it; a background task delivers it, over SMTP with retries and backoff, or into the
//! outbox folder when no SMTP server is configured (development). Not waiting matters for more than speed:
//! "forgot password" answers in the same time whether or not the address has an account.
//!
//! Log lines name the message kind and the recipient, never a link or code. The one exception is the
//! outbox's "written to" line in development, which carries the link on purpose (there is no mailbox to
//! read it from) and never happens when SMTP is configured.

mod templates;
mod transport;

use std::sync::Arc;

use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use serde::Serialize;
use tokio::sync::mpsc;

pub use templates::{MESSAGES, MailTemplates, Rendered};
pub use transport::{DeliveryError, Transport};

use crate::config::MailConfig;
use crate::domain::Email;

/// Messages waiting beyond this are refused (and logged): the throttles on every form keep real traffic far
/// below it, so only a flood would reach it.
const QUEUE_CAPACITY: usize = 10_000;

/// A message to one recipient, rendered and ready to deliver.
pub struct Outgoing {
    pub kind: &'static str,
    pub to: Email,
    pub message: Message,
    /// The link in the message, for the outbox's log line only.
    link: Option<String>,
}

#[derive(Clone)]
pub struct Mailer {
    templates: Arc<MailTemplates>,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    queue: mpsc::Sender<Outgoing>,
    transport: Arc<Transport>,
    /// `[server] app_name`, offered to every template as `app_name`.
    app_name: Option<Arc<str>>,
}

impl Mailer {
    /// Loads the templates, builds the transport and starts the delivery task on the current runtime.
    pub fn start(config: &MailConfig) -> anyhow::Result<Self> {
        let mailer = Self::without_delivery_task(config)?;
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let transport = mailer.transport.clone();
        tokio::spawn(deliver_queued(transport, receiver));
        Ok(Self { queue, ..mailer })
    }

    /// A mailer whose [`send_now`](Self::send_now) delivers directly (the CLI); [`send`](Self::send) would
    /// queue to nobody.
    pub fn without_delivery_task(config: &MailConfig) -> anyhow::Result<Self> {
        let templates = Arc::new(MailTemplates::load(config.templates.as_deref())?);
        let from: Mailbox = config.from.parse().map_err(|_| anyhow::anyhow!("mail.from is not an address"))?;
        let reply_to = config
            .reply_to
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|_| anyhow::anyhow!("mail.reply_to is not an address"))?;
        let transport = Arc::new(Transport::new(config)?);
        let (queue, _) = mpsc::channel(1);
        Ok(Self { templates, from, reply_to, queue, transport, app_name: None })
    }

    /// Names the app in every message (`app_name` in the templates).
    pub fn with_app_name(mut self, app_name: Option<&str>) -> Self {
        self.app_name = app_name.map(Arc::from);
        self
    }

    /// Renders and queues a message; delivery happens in the background.
    pub fn send<C: Serialize>(&self, kind: &'static str, to: &Email, context: C) {
        match self.compose(kind, to, context) {
            Ok(outgoing) => {
                if self.queue.try_send(outgoing).is_err() {
                    tracing::error!(kind, to = %to, "mail queue is full or closed; message dropped");
                }
            }
            Err(err) => tracing::error!(kind, error = %err, "could not compose mail"),
        }
    }

    /// Renders and delivers a message now, with the same retries as queued ones.
    pub async fn send_now<C: Serialize>(&self, kind: &'static str, to: &Email, context: C) -> anyhow::Result<()> {
        let outgoing = self.compose(kind, to, context)?;
        self.transport.deliver_with_retries(&outgoing).await.map_err(anyhow::Error::from)
    }

    /// Whether messages go to a real mail server (otherwise to the outbox folder).
    pub fn uses_smtp(&self) -> bool {
        matches!(*self.transport, Transport::Smtp(_))
    }

    fn compose<C: Serialize>(&self, kind: &'static str, to: &Email, context: C) -> anyhow::Result<Outgoing> {
        let context = minijinja::context! {
            app_name => self.app_name.as_deref(),
            ..minijinja::Value::from_serialize(&context)
        };
        let Rendered { subject, text, html } = self.templates.render(kind, &context)?;
        let recipient: Mailbox = to.as_str().parse().map_err(|e| anyhow::anyhow!("bad recipient: {e}"))?;
        // A Message-ID (random, at this host) keeps spam filters and threading happy.
        let mut builder = Message::builder().from(self.from.clone()).to(recipient).subject(subject).message_id(None);
        if let Some(reply_to) = &self.reply_to {
            builder = builder.reply_to(reply_to.clone());
        }
        let message = builder.multipart(MultiPart::alternative_plain_html(text, html))?;
        let link = context.get_attr("link").ok().and_then(|v| v.as_str().map(str::to_owned));
        Ok(Outgoing { kind, to: to.clone(), message, link })
    }
}

async fn deliver_queued(transport: Arc<Transport>, mut receiver: mpsc::Receiver<Outgoing>) {
    while let Some(outgoing) = receiver.recv().await {
        // Each message on its own task, so one that is being retried does not hold up the others.
        let transport = transport.clone();
        tokio::spawn(async move {
            if let Err(err) = transport.deliver_with_retries(&outgoing).await {
                tracing::error!(kind = outgoing.kind, to = %outgoing.to, error = %err, "could not send mail; giving up");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn mailer(toml: &str) -> Mailer {
        Mailer::without_delivery_task(&Config::from_toml_str(toml).unwrap().mail).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_server_is_retried_then_reported_without_the_secret() {
        // Port 9 on loopback: nothing listens, so every attempt is refused at once; the clock is paused, so
        // the backoff (1 s, 5 s, 30 s) passes without waiting.
        let mailer = mailer("[mail]\nsmtp_url = \"smtp://127.0.0.1:9?tls=none\"\n");
        assert!(mailer.uses_smtp());
        let to = Email::parse("someone@example.com").unwrap();
        let secret = "link-token-that-must-not-leak";
        let started = tokio::time::Instant::now();
        let context = minijinja::context! { link => format!("http://x/reset?token={secret}"), minutes => 30, app_url => "http://x/", name => "n", username => "u" };
        let err = mailer.send_now("reset_password", &to, context).await.unwrap_err().to_string();
        assert!(!err.contains(secret), "{err}");
        assert!(started.elapsed() >= std::time::Duration::from_secs(36), "three retries with backoff");
    }

    #[tokio::test]
    async fn the_outbox_gets_complete_private_messages() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mailer = mailer(&format!(
            "[mail]\noutbox = \"{}\"\nfrom = \"Apps <apps@example.com>\"\nreply_to = \"help@example.com\"\n",
            dir.path().display()
        ));
        let to = Email::parse("someone@example.com").unwrap();
        let context = minijinja::context! { username => "someone", app_url => "http://x/" };
        mailer.send_now("username_reminder", &to, context).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1, "no partial file is left: {files:?}");
        let eml = std::fs::read_to_string(&files[0]).unwrap();
        for header in [
            "From: Apps <apps@example.com>",
            "Reply-To: help@example.com",
            "To: someone@example.com",
            "Message-ID: <",
            "multipart/alternative",
        ] {
            assert!(eml.contains(header), "{header} missing in {eml}");
        }
        assert_eq!(std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn messages_name_the_app_when_it_has_a_name() {
        let to = Email::parse("someone@example.com").unwrap();
        let context = || minijinja::context! { code => "123456", link => "http://x/v", minutes => 30, app_url => "http://x/", inviter => "root", days => 7 };
        let named = mailer("").with_app_name(Some("Sales dashboard"));
        let subject = |mailer: &Mailer, kind: &'static str| {
            let outgoing = mailer.compose(kind, &to, context()).unwrap();
            outgoing.message.headers().get_raw("Subject").unwrap().to_owned()
        };
        assert_eq!(subject(&named, "verify_email"), "Your confirmation code is 123456 (Sales dashboard)");
        assert_eq!(subject(&named, "invite"), "You are invited to Sales dashboard");
        assert_eq!(subject(&mailer(""), "verify_email"), "Your confirmation code is 123456");
        assert_eq!(subject(&mailer(""), "invite"), "You are invited to http://x/");
        // The body is transfer-encoded in the message; the footer is checked on the rendered template.
        let rendered =
            named.templates.render("verify_email", &minijinja::context! { app_name => "Sales dashboard", ..context() });
        assert!(rendered.unwrap().html.contains("Sent by Gatehouse for Sales dashboard at "));
    }
}
