//! Writing the audit trail, and checking that nobody changed it. An audit
//! failure is logged but does not undo the change it describes: the change
//! already happened.
//!
//! The trail is a hash chain (`crate::store::chain`); personal values in
//! texts are marked with [`personal`] so that a subject's erasure can
//! remove them without breaking the chain.

use crate::error::Result;
use crate::service::{Context, Deps};
use crate::store::AuditRecord;
use crate::store::chain::ChainReport;

pub use crate::store::chain::personal;

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
            chain: None,
        };
        if let Err(err) = self.deps.store.append_audit(&entry).await {
            // Never a subject's name or birth date in the log.
            let action = crate::store::chain::without_personal(&entry.action);
            tracing::error!(error = %err, %action, "could not write audit entry");
        }
    }
}

/// Checks the audit trail for tampering.
#[derive(Clone)]
pub struct AuditService {
    deps: Deps,
}

impl AuditService {
    pub fn new(deps: Deps) -> Self {
        Self { deps }
    }

    /// Reads the whole chain in order (admins and the command line):
    /// `ok` with the number of entries, or the first broken entry.
    pub async fn verify(&self, ctx: &Context) -> Result<ChainReport> {
        ctx.require_admin()?;
        let report = self.deps.store.verify_audit_chain().await?;
        if let Some(broken) = &report.first_broken {
            tracing::error!(
                seq = ?broken.seq,
                problem = %broken.problem,
                "the audit trail is broken"
            );
        }
        Ok(report)
    }
}
