//! Records that hold up in an inspection: the tamper-evident audit chain
//! (verification, tampering, restarts, the migration of older trails).

mod chain;
mod migration;
mod tampering;
