//! Periodic removal of expired data. Expired sessions and throttle windows
//! are already ignored by every read; this only keeps the tables small.

use std::time::Duration;

use crate::service::Deps;

const EVERY: Duration = Duration::from_secs(15 * 60);

/// One sweep; returns (sessions, throttle windows) removed.
pub async fn sweep(deps: &Deps) -> (u64, u64) {
    let now = deps.clock.now();
    let sessions = deps
        .store
        .delete_expired_sessions(now)
        .await
        .inspect_err(|e| tracing::warn!(error = %e, "could not remove expired sessions"))
        .unwrap_or(0);
    let windows = deps
        .store
        .purge_throttle_windows(now)
        .await
        .inspect_err(|e| tracing::warn!(error = %e, "could not remove old throttle windows"))
        .unwrap_or(0);
    if sessions + windows > 0 {
        tracing::debug!(sessions, windows, "expired data removed");
    }
    (sessions, windows)
}

/// Sweeps now and every 15 minutes, for as long as the runtime lives.
pub fn spawn(deps: Deps) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(EVERY);
        loop {
            every.tick().await;
            sweep(&deps).await;
        }
    });
}
