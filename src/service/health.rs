//! Readiness of the parts the service depends on, in words an operator can
//! act on and without secrets.

use std::sync::Arc;

use crate::service::Deps;
use crate::service::mail::Mailer;

pub struct HealthService {
    deps: Deps,
    mailer: Arc<Mailer>,
}

impl HealthService {
    pub fn new(deps: Deps, mailer: Arc<Mailer>) -> Self {
        Self { deps, mailer }
    }

    /// "ok", or a short description of what is wrong with mail.
    pub async fn mail(&self) -> String {
        self.mailer.health().await
    }

    /// "ok", or a short description of what is wrong with the database.
    pub async fn database(&self) -> String {
        match self.deps.store.ping().await {
            Ok(()) => "ok".into(),
            Err(err) => {
                tracing::warn!(error = %err, "database health check failed");
                format!("{} database is not reachable", self.deps.store.backend())
            }
        }
    }
}
