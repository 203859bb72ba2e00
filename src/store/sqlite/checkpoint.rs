//! WAL checkpoints off the commit path. SQLite's automatic checkpoint runs
//! inside the commit that crosses the WAL size limit, so that one write
//! waits for copying pages into the database file and two fsyncs; with a
//! single writer every write queued behind it waits too (scenario 4 in
//! BENCHMARKS.md: 1,700 instead of 2,700 creates per second, p99 55 ms
//! instead of 2,300-2,700, p99 55 ms instead of 27-39 ms). Here, after
//! commits, a thread of its own runs a PASSIVE checkpoint on its own
//! connection, which never blocks the writer or readers. A crash between
//! the two loses nothing: the commits are in the WAL, and the next open
//! replays it.
//!
//! The writer keeps a far larger automatic checkpoint as a backstop
//! (`wal_autocheckpoint` in mod.rs): SQLite starts the WAL over only once
//! every frame was copied, which a checkpoint running beside a busy writer
//! may never see. When the backstop fires, this thread has copied nearly
//! everything, so it costs the writer little, and the WAL stays below
//! about 50 MB.

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Duration;

use anyhow::Context;
use rusqlite::Connection;

/// How long the checkpointer lets commits gather before it copies them.
/// Short, so that little is left for the writer's backstop checkpoint.
const GATHER: Duration = Duration::from_millis(10);

pub(crate) struct Checkpointer {
    wake: SyncSender<()>,
}

impl Checkpointer {
    /// Starts the checkpoint thread; it ends when the `Checkpointer` (the
    /// store) is dropped.
    pub(crate) fn start(path: &Path, pragmas: &str) -> anyhow::Result<Self> {
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open {} to checkpoint", path.display()))?;
        conn.execute_batch(pragmas)?;
        let (wake, woken) = sync_channel(1);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_after_commits(&conn, &woken))
            .context("cannot start the sqlite checkpoint thread")?;
        Ok(Self { wake })
    }

    /// Tells the checkpointer that the writer committed. Never waits: one
    /// pending wake-up covers any number of commits.
    pub(crate) fn committed(&self) {
        let _ = self.wake.try_send(());
    }
}

fn checkpoint_after_commits(conn: &Connection, woken: &Receiver<()>) {
    while woken.recv().is_ok() {
        std::thread::sleep(GATHER);
        // Commits signalled while gathering are in the WAL already, so this
        // checkpoint covers them; a later one wakes the thread again.
        let _ = woken.try_recv();
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "sqlite checkpoint failed; the next commit retries");
        }
    }
}
