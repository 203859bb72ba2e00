//! The server's log lines, captured for the tests that check what is (and
//! is not) logged.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{EnvFilter, FilterExt as _, dynamic_filter_fn};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// How many tests are capturing logs right now.
static CAPTURING: AtomicUsize = AtomicUsize::new(0);

/// Log lines at TRACE level while it lives, from every test running
/// meanwhile. The subscriber is global to the test binary, which every area
/// shares, so it records only while a test holds a capture.
pub(super) struct LogCapture {
    /// Where this capture's lines begin in the shared buffer.
    from: usize,
}

impl LogCapture {
    pub(super) fn start() -> Self {
        let logs = captured_logs().lock().unwrap();
        CAPTURING.fetch_add(1, Ordering::SeqCst);
        Self { from: logs.len() }
    }

    /// The lines logged since the capture started.
    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&captured_logs().lock().unwrap()[self.from..]).into_owned()
    }
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        CAPTURING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The lines captured so far; installs the binary's one subscriber.
fn captured_logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        // The test client's own logs are not the server's.
        let server_logs = EnvFilter::new("trace,reqwest=off,cookie_store=off");
        // Asked at every event, not once per call site: the answer changes.
        let while_capturing = dynamic_filter_fn(|_, _| CAPTURING.load(Ordering::SeqCst) > 0);
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(move || LogWriter(logs))
                    .with_ansi(false)
                    .with_filter(server_logs.and(while_capturing)),
            )
            .try_init()
            .expect("the only subscriber of this test binary");
        logs
    })
}

struct LogWriter(&'static Mutex<Vec<u8>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
