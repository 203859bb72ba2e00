//! Outgoing mail through lettre: SMTP (none / STARTTLS / implicit TLS), a
//! file transport that writes .eml files for local use, or none.
//!
//! The mailer remembers whether the last delivery failed, so `/status`
//! shows a broken mail setup even when the SMTP server answers a probe.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use tokio::io::AsyncWriteExt;

use crate::config::{Config, MailTransportKind, SmtpTls};
use crate::metrics::Metrics;
use crate::private_files;

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// `<id>.eml` files in `dir`, as lettre's file transport names them,
    /// but written here with mode 0600: they hold live reset links.
    File {
        dir: PathBuf,
    },
    Disabled,
}

/// The outbox folder, created mode 0700 if missing.
async fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || private_files::create_dir_all(&dir))
        .await
        .map_err(std::io::Error::other)?
}

/// A mail's plain-text and HTML bodies.
pub struct Bodies {
    pub text: String,
    pub html: String,
}

pub struct Mailer {
    transport: Transport,
    metrics: Arc<Metrics>,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    /// Upper bound for one health probe or delivery. lettre's own timeout
    /// covers only the connect, so a server that accepts connections but
    /// never answers would otherwise hold a delivery (or `/status`) forever.
    probe_timeout: Duration,
    delivery_timeout: Duration,
    /// Why the most recent delivery failed, until one succeeds again. Short
    /// and free of secrets: it is shown on `/status`.
    last_failure: Mutex<Option<&'static str>>,
    probe_cache: tokio::sync::Mutex<Option<(Instant, Result<(), &'static str>)>>,
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
            MailTransportKind::File => Transport::File {
                dir: config.data_dir.join("outbox"),
            },
            MailTransportKind::Smtp => Transport::Smtp(smtp_transport(config)?),
        };
        Ok(Self {
            transport,
            metrics,
            from,
            reply_to,
            probe_timeout: Duration::from_secs(config.smtp_timeout_secs.max(1)),
            // A delivery is a handful of round trips, each allowed the timeout.
            delivery_timeout: Duration::from_secs(config.smtp_timeout_secs.max(1) * 3),
            last_failure: Mutex::new(None),
            probe_cache: tokio::sync::Mutex::new(None),
        })
    }

    /// A text + HTML mail to `to`, with our From and Reply-To.
    pub fn compose(
        &self,
        to: &str,
        subject: &str,
        bodies: Bodies,
    ) -> crate::error::Result<Message> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| crate::error::Error::internal(anyhow::anyhow!("cannot mail {to}: {e}")))?;
        self.message()
            .to(to)
            .subject(subject)
            .multipart(MultiPart::alternative_plain_html(bodies.text, bodies.html))
            .map_err(crate::error::Error::internal)
    }

    /// A message with our From and Reply-To, ready for a body.
    pub fn message(&self) -> lettre::message::MessageBuilder {
        let builder = Message::builder().from(self.from.clone());
        match &self.reply_to {
            Some(r) => builder.reply_to(r.clone()),
            None => builder,
        }
    }

    /// Delivers `message`. A failure is logged and remembered for
    /// `/status`; the caller decides whether to tell anyone else.
    pub async fn send(&self, message: Message) -> anyhow::Result<()> {
        let result = self.deliver(message).await;
        let outcome = if result.is_ok() { "sent" } else { "failed" };
        self.metrics.mails.with_label_values(&[outcome]).inc();
        // The state is one word, whole even after a panic elsewhere.
        let mut last_failure = self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match &result {
            Ok(()) => *last_failure = None,
            Err(failure) => {
                tracing::error!(
                    reason = failure.summary,
                    error = format!("{:#}", failure.detail),
                    "mail delivery failed"
                );
                *last_failure = Some(failure.summary);
            }
        }
        result.map_err(|f| f.detail)
    }

    async fn deliver(&self, message: Message) -> Result<(), DeliveryFailure> {
        match &self.transport {
            Transport::Smtp(t) => {
                match tokio::time::timeout(self.delivery_timeout, t.send(message)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        return Err(DeliveryFailure {
                            summary: describe_smtp_error(&e),
                            detail: anyhow::Error::new(e).context("SMTP delivery failed"),
                        });
                    }
                    Err(_) => {
                        return Err(DeliveryFailure {
                            summary: "the SMTP server timed out",
                            detail: anyhow::anyhow!(
                                "SMTP delivery did not finish within {:?}",
                                self.delivery_timeout
                            ),
                        });
                    }
                }
            }
            Transport::File { dir } => {
                let written = async {
                    create_private_dir(dir)
                        .await
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                    // A random name, never an existing file's (create_new).
                    let name = crate::clock::random_hex(&crate::clock::OsRandom, 16);
                    let path = dir.join(format!("{name}.eml"));
                    let mut file = tokio::fs::OpenOptions::from(private_files::new_file_options())
                        .open(&path)
                        .await
                        .context("cannot write mail file")?;
                    file.write_all(&message.formatted())
                        .await
                        .context("cannot write mail file")?;
                    file.flush().await.context("cannot write mail file")?;
                    Ok::<_, anyhow::Error>(())
                };
                written.await.map_err(|detail| DeliveryFailure {
                    summary: "the mail outbox folder is not writable",
                    detail,
                })?;
            }
            Transport::Disabled => {
                tracing::info!("mail transport is none; message dropped");
            }
        }
        Ok(())
    }

    /// "ok", or what is wrong, without secrets: whether the transport works
    /// now, then whether the last delivery failed.
    pub async fn health(&self) -> String {
        let transport = match &self.transport {
            Transport::Disabled => return "mail is disabled (mail_transport = none)".into(),
            Transport::File { dir } => match create_private_dir(dir).await {
                Ok(()) => Ok(()),
                Err(_) => Err("the mail outbox folder is not writable"),
            },
            Transport::Smtp(t) => self.probe_smtp(t).await,
        };
        if let Err(problem) = transport {
            return problem.into();
        }
        match *self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            Some(reason) => format!("the last mail could not be delivered: {reason}"),
            None => "ok".into(),
        }
    }
}

impl Mailer {
    /// Connects (and logs in, if configured) to the SMTP server. `/status`
    /// is public, so the result is reused for a while: polling it cannot
    /// turn into a flood of SMTP logins. The lock also makes concurrent
    /// callers share one probe.
    async fn probe_smtp(
        &self,
        transport: &AsyncSmtpTransport<Tokio1Executor>,
    ) -> Result<(), &'static str> {
        let mut cached = self.probe_cache.lock().await;
        if let Some((at, result)) = *cached
            && at.elapsed() < PROBE_REUSE
        {
            return result;
        }
        let result =
            match tokio::time::timeout(self.probe_timeout, transport.test_connection()).await {
                Ok(Ok(true)) => Ok(()),
                Ok(Ok(false)) => Err("the SMTP server does not answer"),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "SMTP health probe failed");
                    Err(describe_smtp_error(&e))
                }
                Err(_) => Err("the SMTP server timed out"),
            };
        *cached = Some((Instant::now(), result));
        result
    }
}

/// How long one SMTP probe result is reused by `/status`.
const PROBE_REUSE: Duration = Duration::from_secs(10);

struct DeliveryFailure {
    /// For `/status`: no host names, user names or server replies.
    summary: &'static str,
    /// For the log.
    detail: anyhow::Error,
}

fn describe_smtp_error(e: &lettre::transport::smtp::Error) -> &'static str {
    if e.is_timeout() {
        "the SMTP server timed out"
    } else if e.is_tls() {
        "the TLS handshake with the SMTP server failed"
    } else if e.is_permanent() {
        "the SMTP server refused the message or the login"
    } else if e.is_transient() {
        "the SMTP server is temporarily refusing mail"
    } else if e.is_client() {
        "the SMTP server does not offer what the configuration requires (STARTTLS or a login method)"
    } else {
        // lettre reports a TLS mismatch (TLS to a plain port or the other
        // way round) as a connection error too.
        "the SMTP server is not reachable, or does not use the configured TLS mode (smtp_tls)"
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
