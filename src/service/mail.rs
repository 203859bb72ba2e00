//! Outgoing mail through lettre: SMTP (none / STARTTLS / implicit TLS), a
//! file transport that writes .eml files for local use, or none.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::{Config, MailTransportKind, SmtpTls};
use crate::metrics::Metrics;

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    File {
        dir: PathBuf,
        transport: AsyncFileTransport<Tokio1Executor>,
    },
    Disabled,
}

pub struct Mailer {
    transport: Transport,
    metrics: Arc<Metrics>,
    from: Mailbox,
    reply_to: Option<Mailbox>,
}

impl Mailer {
    pub fn from_config(config: &Config, metrics: Arc<Metrics>) -> anyhow::Result<Self> {
        let from: Mailbox = config
            .mail_from
            .as_deref()
            .unwrap_or("C3-PRO IDM <idm@localhost>")
            .parse()
            .context("mail_from is not a valid address")?;
        let reply_to = config
            .admin_email
            .as_deref()
            .map(|a| {
                a.parse::<Mailbox>()
                    .context("admin_email is not a valid address")
            })
            .transpose()?;
        let transport = match config.mail_transport {
            MailTransportKind::None => Transport::Disabled,
            MailTransportKind::File => {
                let dir = config.data_dir.join("outbox");
                Transport::File {
                    transport: AsyncFileTransport::new(&dir),
                    dir,
                }
            }
            MailTransportKind::Smtp => Transport::Smtp(smtp_transport(config)?),
        };
        Ok(Self {
            transport,
            metrics,
            from,
            reply_to,
        })
    }

    /// A message with our From and Reply-To, ready for a body.
    pub fn message(&self) -> lettre::message::MessageBuilder {
        let builder = Message::builder().from(self.from.clone());
        match &self.reply_to {
            Some(r) => builder.reply_to(r.clone()),
            None => builder,
        }
    }

    pub async fn send(&self, message: Message) -> anyhow::Result<()> {
        let result = self.deliver(message).await;
        let outcome = if result.is_ok() { "sent" } else { "failed" };
        self.metrics.mails.with_label_values(&[outcome]).inc();
        result
    }

    async fn deliver(&self, message: Message) -> anyhow::Result<()> {
        match &self.transport {
            Transport::Smtp(t) => {
                t.send(message).await.context("SMTP delivery failed")?;
            }
            Transport::File { dir, transport } => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                transport
                    .send(message)
                    .await
                    .context("cannot write mail file")?;
            }
            Transport::Disabled => {
                tracing::info!("mail transport is none; message dropped");
            }
        }
        Ok(())
    }

    /// "ok", or what is wrong, without secrets.
    pub async fn health(&self) -> String {
        match &self.transport {
            Transport::Disabled => "mail is disabled (mail_transport = none)".into(),
            Transport::File { dir, .. } => match tokio::fs::create_dir_all(dir).await {
                Ok(()) => "ok".into(),
                Err(_) => "the mail outbox folder is not writable".into(),
            },
            Transport::Smtp(t) => match t.test_connection().await {
                Ok(true) => "ok".into(),
                Ok(false) | Err(_) => "the SMTP server is not reachable".into(),
            },
        }
    }
}

fn smtp_transport(config: &Config) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let host = config
        .smtp_host
        .as_deref()
        .context("mail_transport = smtp needs smtp_host")?;
    let mut builder = match config.smtp_tls {
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
        SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?,
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)?,
    };
    if let Some(port) = config.smtp_port {
        builder = builder.port(port);
    }
    let password = match (&config.smtp_password, &config.smtp_password_file) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(path)) => Some(Config::read_secret_file(path)?),
        (None, None) => None,
    };
    if let Some(user) = &config.smtp_username {
        let password = password.context("smtp_username is set but smtp_password is not")?;
        builder = builder.credentials(Credentials::new(
            user.clone(),
            password.expose_secret().to_owned(),
        ));
    }
    Ok(builder
        .timeout(Some(Duration::from_secs(config.smtp_timeout_secs)))
        .build())
}
