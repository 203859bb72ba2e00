//! Building and running the HTTP application.

use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::api::error::json_error_envelope;
use crate::clock::{Clock, OsRandom, RandomSource, SystemClock};
use crate::config::Config;
use crate::error::Error;
use crate::http::client_ip::resolve_client_ip;
use crate::http::metrics::{measure, remember_route};
use crate::http::request_id::{X_REQUEST_ID, request_scope};
use crate::http::security_headers::{SecurityHeaders, add_security_headers};
use crate::service::{Deps, Services};
use crate::store;

/// The largest request body we read (SPEC section 1).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub services: Arc<Services>,
    pub config: Arc<Config>,
    /// Signs the CSRF tokens of signed-out page forms.
    pub form_key: Arc<crate::web::csrf::FormKey>,
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
}

impl Application {
    /// Opens the store, resolves secrets, builds the services and binds the
    /// listener (port 0 picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with(config, Arc::new(SystemClock), Arc::new(OsRandom)).await
    }

    /// Like [`Application::build`] with an injected clock and randomness.
    pub async fn build_with(
        config: Config,
        clock: Arc<dyn Clock>,
        random: Arc<dyn RandomSource>,
    ) -> anyhow::Result<Self> {
        let state = build_state(config, clock, random).await?;
        let config = &state.config;
        let address = format!("{}:{}", config.bind, config.port);
        let listener = TcpListener::bind(&address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        let router = router(state.clone());
        crate::service::housekeeping::spawn(state.services.deps.clone());
        Ok(Self {
            listener,
            router,
            state,
        })
    }

    #[allow(clippy::expect_used, reason = "a bound TCP listener has an address")]
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGINT or SIGTERM, then stops accepting and lets
    /// in-flight requests finish, for at most `shutdown_grace_secs`.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        tracing::info!(address = %self.local_addr(), store = self.state.services.deps.store.backend(), "listening");
        let grace = Duration::from_secs(self.state.config.shutdown_grace_secs);
        let (stopping_tx, mut stopping) = tokio::sync::watch::channel(false);
        let serve = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            let _ = stopping_tx.send(true);
        });
        let grace_over = async move {
            let _ = stopping.changed().await;
            tokio::time::sleep(grace).await;
        };
        let served = tokio::select! {
            result = serve => result,
            () = grace_over => {
                tracing::warn!(grace_secs = grace.as_secs(), "shutdown grace period over; exiting with requests still running");
                Ok(())
            }
        };
        // Mails that requests already promised are still delivered.
        if tokio::time::timeout(grace, self.state.services.background.idle())
            .await
            .is_err()
        {
            tracing::warn!("stopping with background work (mail delivery) unfinished");
        }
        served
    }
}

/// Services and state for a configuration, without binding a port (the
/// command line uses this too).
pub async fn build_state(
    config: Config,
    clock: Arc<dyn Clock>,
    random: Arc<dyn RandomSource>,
) -> anyhow::Result<AppState> {
    let secrets = config.resolve_secrets()?;
    let store = store::open(&config.store_location()?, &config.database_timeouts()).await?;
    let deps = Deps {
        store,
        clock,
        random,
    };
    let services = Services::new(&config, &secrets, deps)?;
    Ok(AppState {
        services: Arc::new(services),
        config: Arc::new(config),
        form_key: Arc::new(crate::web::csrf::FormKey::derive(&secrets.token_key)),
    })
}

/// The whole service: the API and the pages, each with its own error
/// rendering, inside the shared plumbing of `crate::http`.
pub fn router(state: AppState) -> Router {
    // The API answers every error, the framework's own included (405 with
    // `Allow`, rejected bodies), in the JSON envelope.
    let api = crate::api::router().layer(middleware::from_fn(json_error_envelope));
    // Pages render their errors as HTML (`web::error`), which the envelope
    // passes through untouched. It still wraps them for what the framework
    // answers before a page handler runs: 405 for a wrong method and
    // rejected form, query or path values (400/415/422) would otherwise be
    // plain text or empty, and every route promises API clients JSON errors.
    let pages = crate::web::router(&state, crate::api::health::root)
        .layer(middleware::from_fn(json_error_envelope));
    Router::new()
        .merge(api)
        .merge(pages)
        .route_layer(middleware::from_fn(remember_route))
        // Unknown paths: `Error` renders as the JSON envelope (a browser
        // that follows a dead link gets it too, as API clients need it).
        .fallback(|| async { Error::NotFound("Not found".into()) })
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(X_REQUEST_ID, MakeRequestUuid))
                .layer(middleware::from_fn_with_state(state.clone(), measure))
                .layer(PropagateRequestIdLayer::new(X_REQUEST_ID))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
                    // The path only: query strings may carry one-time keys.
                    let request_id = req
                        .headers()
                        .get(X_REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id)
                }))
                .layer(middleware::from_fn_with_state(
                    SecurityHeaders::from_config(&state.config),
                    add_security_headers,
                ))
                .layer(middleware::from_fn(request_scope))
                .layer(middleware::from_fn_with_state(state.clone(), resolve_client_ip))
                // A panic is a bug: the client (a page too, as before the
                // envelope moved onto the routers) gets the JSON 500 with a
                // request id, the log gets the details.
                .layer(CatchPanicLayer::custom(panic_response))
                .layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .with_state(state)
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    Error::internal(anyhow::anyhow!("handler panicked: {what}")).into_response()
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
