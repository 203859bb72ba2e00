//! Readiness of the parts the service depends on, in words an operator can
//! act on and without secrets.

use std::sync::Arc;
use std::time::Duration;

use crate::service::Deps;
use crate::service::mail::Mailer;

pub struct HealthService {
    deps: Deps,
    mailer: Arc<Mailer>,
    /// How long the database check may take (`readyz_timeout_secs`): a
    /// load balancer's health check must get an answer before its own
    /// timeout, and a database that does not answer in time is not ready.
    readiness: Duration,
}

impl HealthService {
    pub fn new(deps: Deps, mailer: Arc<Mailer>, readiness: Duration) -> Self {
        Self {
            deps,
            mailer,
            readiness,
        }
    }

    /// "ok", or a short description of what is wrong with mail.
    pub async fn mail(&self) -> String {
        self.mailer.health().await
    }

    /// "ok", or a short description of what is wrong with the database.
    pub async fn database(&self) -> String {
        let answer = tokio::time::timeout(self.readiness, self.deps.store.ping()).await;
        match answer {
            Ok(Ok(())) => "ok".into(),
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "database health check failed");
                format!("{} database is not reachable", self.deps.store.backend())
            }
            Err(_) => {
                tracing::warn!(
                    timeout_secs = self.readiness.as_secs_f64(),
                    "database health check timed out"
                );
                format!("{} database is not reachable", self.deps.store.backend())
            }
        }
    }
}
