//! Records that hold up in an inspection: the tamper-evident audit chain
//! (verification, tampering, restarts, the migration of older trails),
//! corrections of journey dates and erasure of personal data.

mod chain;
mod corrections;
mod erasure;
mod migration;
mod tampering;
