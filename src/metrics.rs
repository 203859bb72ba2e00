//! Prometheus metrics: HTTP requests per route and status with latency,
//! logins, mails and store failures. One registry per application, so
//! tests (and several apps in one process) do not share counters.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    /// `result`: ok, failed, throttled.
    pub logins: IntCounterVec,
    /// `result`: sent, failed.
    pub mails: IntCounterVec,
    pub store_errors: IntCounter,
}

impl Metrics {
    #[allow(
        clippy::expect_used,
        reason = "constant names and labels, registered once; every test builds them"
    )]
    pub fn new() -> Self {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "idm_http_requests_total",
                "HTTP requests by route template and status",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "idm_http_request_duration_seconds",
                "HTTP request latency by route template",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["method", "route"],
        )
        .expect("valid metric");
        let logins = IntCounterVec::new(
            Opts::new("idm_logins_total", "Login attempts by result"),
            &["result"],
        )
        .expect("valid metric");
        let mails = IntCounterVec::new(
            Opts::new("idm_mails_total", "Outgoing mails by result"),
            &["result"],
        )
        .expect("valid metric");
        let store_errors = IntCounter::new(
            "idm_store_errors_total",
            "Requests that failed in the database",
        )
        .expect("valid metric");
        for collector in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_duration.clone()),
            Box::new(logins.clone()),
            Box::new(mails.clone()),
            Box::new(store_errors.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Self {
            registry,
            http_requests,
            http_duration,
            logins,
            mails,
            store_errors,
        }
    }

    /// The Prometheus text exposition format.
    #[allow(
        clippy::expect_used,
        reason = "writing into a Vec cannot fail and the format is UTF-8"
    )]
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding metrics into memory cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
