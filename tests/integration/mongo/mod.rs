//! MongoDB-specific behaviour over real HTTP: several instances on one
//! database, a database that goes away, and the import from the old
//! service. Needs `IDM_TEST_MONGODB_URI` (see tests/integration/common/mongo.rs).

mod admin_fence;
mod audit_chain;
mod database;
mod failover;
mod import;
mod instances;
mod legacy_complete;
mod replica_set;

use crate::common::*;
use idm::Config;

/// A test configuration on the given MongoDB database.
fn mongo_config(dir: &tempfile::TempDir, uri: &str, database: &str) -> Config {
    Config {
        database_url: uri.to_owned(),
        database_name: database.to_owned(),
        ..test_config(dir)
    }
}
