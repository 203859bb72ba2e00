//! A real SMTP server on a loopback port for tests: mailin runs the SMTP
//! state machine, this file only moves lines between it and the socket.
//! Received messages are parsed with mail-parser.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailin::{Action, Handler, Response, SessionBuilder};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

/// One received mail, decoded.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub from: String,
    pub reply_to: Option<String>,
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// The message as it came over the wire.
    pub raw: String,
}

impl ReceivedMail {
    pub fn parse(raw: &[u8]) -> Self {
        let message = mail_parser::MessageParser::default()
            .parse(raw)
            .expect("a parseable message");
        let first_address = |a: Option<&mail_parser::Address>| {
            a.and_then(|a| a.first())
                .and_then(|a| a.address())
                .map(str::to_owned)
        };
        Self {
            from: first_address(message.from()).unwrap_or_default(),
            reply_to: first_address(message.reply_to()),
            to: message
                .to()
                .map(|a| {
                    a.iter()
                        .filter_map(|a| a.address().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            subject: message.subject().unwrap_or_default().to_owned(),
            text: message
                .body_text(0)
                .map(|t| t.into_owned())
                .unwrap_or_default(),
            html: message.body_html(0).map(|h| h.into_owned()),
            raw: String::from_utf8_lossy(raw).into_owned(),
        }
    }

    /// The first `<base>/reset?k=...` link in the text part.
    pub fn reset_link(&self) -> String {
        self.text
            .split_whitespace()
            .find(|w| w.contains("/reset?k="))
            .unwrap_or_else(|| panic!("no reset link in mail:\n{}", self.text))
            .to_owned()
    }

    /// The key of the reset link.
    pub fn reset_key(&self) -> String {
        self.reset_link()
            .split_once("?k=")
            .expect("link has a key")
            .1
            .to_owned()
    }
}

pub struct TestSmtp {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<ReceivedMail>>>,
    arrived: Arc<Notify>,
    rejected: Arc<Mutex<HashSet<String>>>,
    connections: Arc<AtomicUsize>,
    /// While false, connections wait before the greeting: the server is
    /// "slow", so tests can see what happens before a mail is accepted.
    open: watch::Sender<bool>,
}

#[derive(Clone)]
struct Collect {
    data: Vec<u8>,
    received: Arc<Mutex<Vec<ReceivedMail>>>,
    arrived: Arc<Notify>,
    rejected: Arc<Mutex<HashSet<String>>>,
}

impl Handler for Collect {
    fn rcpt(&mut self, to: &str) -> Response {
        if self.rejected.lock().unwrap().contains(to) {
            mailin::response::NO_MAILBOX
        } else {
            mailin::response::OK
        }
    }

    fn data_start(&mut self, _: &str, _: &str, _: bool, _: &[String]) -> Response {
        self.data.clear();
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mail = ReceivedMail::parse(&self.data);
        self.received.lock().unwrap().push(mail);
        self.arrived.notify_waiters();
        mailin::response::OK
    }
}

impl TestSmtp {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let arrived = Arc::new(Notify::new());
        let rejected = Arc::new(Mutex::new(HashSet::new()));
        let (open, _) = watch::channel(true);
        let handler = Collect {
            data: Vec::new(),
            received: received.clone(),
            arrived: arrived.clone(),
            rejected: rejected.clone(),
        };
        let gate = open.subscribe();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        tokio::spawn(async move {
            loop {
                let Ok((socket, peer)) = listener.accept().await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let handler = handler.clone();
                let mut gate = gate.clone();
                tokio::spawn(async move {
                    let _ = gate.wait_for(|&open| open).await;
                    let _ = serve_connection(socket, peer.ip(), handler).await;
                });
            }
        });
        Self {
            addr,
            received,
            arrived,
            rejected,
            connections,
            open,
        }
    }

    /// How many connections clients have opened so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Refuses mail for `address` from now on (550 at RCPT).
    pub fn reject_recipient(&self, address: &str) {
        self.rejected.lock().unwrap().insert(address.to_owned());
    }

    /// Holds new connections before the greeting until [`TestSmtp::resume`].
    pub fn pause(&self) {
        self.open.send_replace(false);
    }

    pub fn resume(&self) {
        self.open.send_replace(true);
    }

    pub fn mails(&self) -> Vec<ReceivedMail> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (at most 10 s) until at least `n` mails have arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.arrived.notified();
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("expected {n} mails, got {}", self.mails().len());
            }
        }
    }
}

async fn serve_connection(
    socket: tokio::net::TcpStream,
    peer: IpAddr,
    handler: Collect,
) -> std::io::Result<()> {
    let (reader, mut writer) = socket.into_split();
    let mut reader = BufReader::new(reader);
    let mut session = SessionBuilder::new("smtp.test").build(peer, handler);
    writer.write_all(&session.greeting().buffer()?).await?;
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let response = session.process(&line);
        match response.action {
            Action::Reply => writer.write_all(&response.buffer()?).await?,
            Action::Close => {
                writer.write_all(&response.buffer()?).await?;
                return Ok(());
            }
            Action::NoReply => {}
            Action::UpgradeTls => return Ok(()),
        }
    }
}
