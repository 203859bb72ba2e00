//! Writing the audit trail. An audit failure is logged but does not undo
//! the change it describes: the change already happened.

use crate::service::{Context, Deps};
use crate::store::AuditRecord;

/// What an audit entry is about.
#[derive(Debug, Clone, Default)]
pub struct AuditTarget {
    pub subject: Option<String>,
    pub link: Option<String>,
    pub user: Option<String>,
}

impl AuditTarget {
    pub fn user(username: &str) -> Self {
        Self {
            user: Some(username.to_owned()),
            ..Self::default()
        }
    }
}

#[derive(Clone)]
pub struct Auditor {
    deps: Deps,
}

impl Auditor {
    pub fn new(deps: Deps) -> Self {
        Self { deps }
    }

    pub async fn record(&self, ctx: &Context, target: AuditTarget, action: impl Into<String>) {
        let entry = AuditRecord {
            datetime: self.deps.clock.now(),
            action: action.into(),
            actor: ctx.actor_name(),
            request_id: ctx.request_id.clone(),
            client_ip: ctx.client_ip.map(|ip| ip.to_string()),
            subject: target.subject,
            link: target.link,
            user: target.user,
        };
        if let Err(err) = self.deps.store.append_audit(&entry).await {
            tracing::error!(error = %err, action = %entry.action, "could not write audit entry");
        }
    }
}
