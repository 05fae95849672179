//! Where messages go: an SMTP server (STARTTLS or implicit TLS through rustls, optional authentication,
//! timeouts, retries with backoff), or `.eml` files in the outbox folder for development.

use std::path::PathBuf;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::Outgoing;
use crate::config::{MailConfig, SmtpTls};

/// Attempts per message, and the wait before each retry. Permanent refusals (5xx) are not retried.
const RETRY_DELAYS: [Duration; 3] = [Duration::from_secs(1), Duration::from_secs(5), Duration::from_secs(30)];

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("writing to the outbox {path}: {source}")]
    Outbox { path: PathBuf, source: std::io::Error },
}

pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

impl Transport {
    pub fn new(config: &MailConfig) -> anyhow::Result<Self> {
        let Some(smtp) = &config.smtp else {
            return Ok(Transport::Outbox(config.outbox.clone()));
        };
        let builder = match smtp.tls {
            SmtpTls::Implicit => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)?,
            SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)?,
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
        };
        let mut builder = builder.port(smtp.port).timeout(Some(config.timeout));
        if let Some(username) = &smtp.username {
            let password = smtp.password.as_ref().map(|p| p.expose().clone()).unwrap_or_default();
            builder = builder.credentials(Credentials::new(username.clone(), password));
        }
        Ok(Transport::Smtp(builder.build()))
    }

    pub async fn deliver_with_retries(&self, outgoing: &Outgoing) -> Result<(), DeliveryError> {
        let mut delays = RETRY_DELAYS.iter();
        loop {
            match self.deliver(outgoing).await {
                Ok(()) => return Ok(()),
                Err(DeliveryError::Smtp(err)) if !err.is_permanent() => match delays.next() {
                    Some(delay) => {
                        tracing::warn!(kind = outgoing.kind, to = %outgoing.to, error = %err, retry_in = ?delay, "mail not sent yet; will retry");
                        tokio::time::sleep(*delay).await;
                    }
                    None => return Err(DeliveryError::Smtp(err)),
                },
                Err(err) => return Err(err),
            }
        }
    }

    async fn deliver(&self, outgoing: &Outgoing) -> Result<(), DeliveryError> {
        match self {
            Transport::Smtp(smtp) => {
                smtp.send(outgoing.message.clone()).await?;
                tracing::info!(kind = outgoing.kind, to = %outgoing.to, "mail sent");
                Ok(())
            }
            Transport::Outbox(dir) => {
                let path = write_to_outbox(dir, outgoing).await?;
                tracing::info!(
                    kind = outgoing.kind,
                    to = %outgoing.to,
                    file = %path.display(),
                    link = outgoing.link.as_deref().unwrap_or("-"),
                    "mail written to the outbox (no [mail] smtp_url configured)"
                );
                Ok(())
            }
        }
    }
}

/// Writes the message as `<unix-ms>-<kind>-<random>.eml`, complete or not at all (written under a temporary
/// name, then renamed), readable by its owner only: it holds a live link.
async fn write_to_outbox(dir: &std::path::Path, outgoing: &Outgoing) -> Result<PathBuf, DeliveryError> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| DeliveryError::Outbox { path, source }
    };
    tokio::fs::create_dir_all(dir).await.map_err(err(dir))?;
    let millis = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let name = format!("{millis}-{}-{}.eml", outgoing.kind, crate::random::hex_token(4));
    let path = dir.join(&name);
    let partial = dir.join(format!(".{name}.partial"));
    let bytes = outgoing.message.formatted();
    let write = {
        let partial = partial.clone();
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&partial)?;
            file.write_all(&bytes)?;
            file.sync_all()
        })
    };
    write.await.map_err(std::io::Error::other).and_then(|r| r).map_err(err(&partial))?;
    tokio::fs::rename(&partial, &path).await.map_err(err(&path))?;
    Ok(path)
}
