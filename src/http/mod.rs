//! HTTP plumbing shared by the JSON API (`crate::api`) and the pages
//! (`crate::web`): request ids, the client address, CSV downloads, request metrics, the
//! log line of an internal error, and the security headers. Both adapters
//! depend on this module; it depends on neither, and they never import
//! each other. `crate::app` wires these layers around both routers.

pub mod client_ip;
pub mod download;
pub mod error_log;
pub mod metrics;
pub mod request_id;
pub mod security_headers;
