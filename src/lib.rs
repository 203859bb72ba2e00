//! C3-PRO IDM: identity and study-participant manager for research studies.
//!
//! `main.rs` is a thin command line over this library; [`Application`]
//! builds and runs the HTTP service.

pub mod api;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod metrics;
pub mod private_files;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod web;

pub use app::Application;
pub use config::Config;
