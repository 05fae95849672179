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
        Ok(Self { templates, from, reply_to, queue, transport })
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
        let context = minijinja::Value::from_serialize(&context);
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
