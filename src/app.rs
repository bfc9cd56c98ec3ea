//! Wiring: config → store, object storage, engines → service → router → server with graceful
//! shutdown.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use idverify_objects::{ObjectStore, ObjectStoreConfig};
use idverify_store::{Store, StoreConfig};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::engines::{self, EngineSettings, Engines};
use crate::http::{self, AppState};
use crate::imaging::ImageLimits;
use crate::readiness::Readiness;
use crate::telemetry::Metrics;
use crate::verify::{ServiceSettings, VerifyService};

pub fn engine_settings(config: &Config) -> EngineSettings {
    EngineSettings {
        models_dir: config.models_dir.clone(),
        intra_threads: config.engine_threads,
        sessions: config.engine_sessions,
        target_fmr: config.face_target_fmr,
        recognizers: config.face_recognizers,
        cross_check_passports: config.document_cross_check_passports,
    }
}

/// Loads the real models off the async runtime.
pub async fn load_engines(config: &Config) -> anyhow::Result<Engines> {
    let settings = engine_settings(config);
    tokio::task::spawn_blocking(move || engines::load(&settings)).await.context("model loading panicked")?
}

/// Runs every model's warm-up inference off the async runtime (see `readiness`); a model that
/// fails it fails start-up, with the model file named.
pub async fn warm_up_engines(engines: &Engines, config: &Config) -> anyhow::Result<Readiness> {
    let engines = engines.clone();
    let checks = tokio::task::spawn_blocking(move || engines::warm_up(&engines))
        .await
        .context("model warm-up panicked")?
        .with_context(|| format!("models in {}", config.models_dir.display()))?;
    for check in &checks {
        tracing::info!(
            engine = check.engine,
            model = check.model,
            warmup_ms = check.duration.as_secs_f64() * 1000.0,
            "model ready"
        );
    }
    Ok(Readiness::new(checks))
}

pub async fn connect_store(config: &Config) -> anyhow::Result<Store> {
    let store_config = StoreConfig {
        data_dir: config.data_dir.clone(),
        database_url: config.database_url().map(str::to_string),
        max_connections: config.database_max_connections,
        connect_timeout: Duration::from_secs(config.database_connect_timeout_secs),
    };
    Store::connect(&store_config).await.map_err(|e| anyhow::anyhow!("database: {e}"))
}

pub async fn connect_objects(config: &Config) -> anyhow::Result<Option<ObjectStore>> {
    if !config.s3_enabled() {
        return Ok(None);
    }
    let objects = ObjectStore::new(ObjectStoreConfig {
        endpoint: Some(config.s3_endpoint.clone()).filter(|s| !s.is_empty()),
        region: config.s3_region.clone(),
        bucket: config.s3_bucket.clone(),
        access_key_id: config.s3_access_key_id.clone(),
        secret_access_key: config.s3_secret_access_key.expose().to_string(),
        force_path_style: config.s3_force_path_style,
        presign_ttl: Duration::from_secs(config.s3_presign_ttl_secs),
        max_object_bytes: config.max_image_bytes,
        delete_after_read: config.s3_delete_after_read,
        timeout: Duration::from_millis(config.s3_timeout_ms),
    })
    .await
    .map_err(|e| anyhow::anyhow!("S3: {e}"))?;
    // Without static keys the default chain must find some: none at all is a deployment mistake,
    // while a source that fails now (a role endpoint briefly down) may work on the next call.
    match objects.check_credentials().await {
        Ok(()) => {}
        Err(e @ idverify_objects::ObjectError::Config(_)) => return Err(anyhow::anyhow!("S3: {e}")),
        Err(e) => tracing::warn!(error = %e, "could not resolve S3 credentials yet; S3 calls will retry"),
    }
    if let Err(e) = objects.ensure_bucket().await {
        tracing::warn!(error = %e, "could not check or create the S3 bucket; uploads may fail until it exists");
    }
    Ok(Some(objects))
}

/// The configured limits on uploaded images.
pub fn image_limits(config: &Config) -> ImageLimits {
    ImageLimits { max_bytes: config.max_image_bytes, max_pixels: config.max_image_pixels }
}

/// Builds the application state from its parts (tests pass fake engines here), `readiness` from
/// [`warm_up_engines`].
pub fn build_state(
    config: Config,
    engines: Engines,
    readiness: Readiness,
    store: Store,
    objects: Option<ObjectStore>,
) -> AppState {
    let metrics = Arc::new(Metrics::default());
    let service = VerifyService::new(
        engines,
        objects.clone(),
        ServiceSettings {
            limits: image_limits(&config),
            max_in_flight: config.max_in_flight,
            queue_wait: Duration::from_millis(config.queue_wait_ms),
            min_age: config.min_age,
        },
        metrics.clone(),
    );
    AppState {
        service: Arc::new(service),
        store,
        objects,
        metrics,
        config: Arc::new(config),
        readiness: Arc::new(readiness),
        background: tokio_util::task::TaskTracker::new(),
    }
}

/// A bound, not yet running server: tests bind port 0 and read the address.
pub struct Server {
    listener: TcpListener,
    /// `/metrics` alone, when `metrics_listen` is set.
    metrics_listener: Option<TcpListener>,
    state: AppState,
}

impl Server {
    pub async fn bind(state: AppState) -> anyhow::Result<Server> {
        let addr = state.config.listen_addr();
        let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        let metrics_listener = match state.config.metrics_addr() {
            Some(metrics) => {
                let metrics = metrics.context("metrics_listen")?;
                let listener = TcpListener::bind(metrics)
                    .await
                    .with_context(|| format!("cannot listen on {metrics} (metrics_listen)"))?;
                Some(listener)
            }
            None => None,
        };
        Ok(Server { listener, metrics_listener, state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| self.state.config.listen_addr())
    }

    /// The separate metrics listener's address, when `metrics_listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` resolves; then `/readyz` answers 503 (draining) while requests are
    /// still accepted and served for `shutdown_drain_delay_secs`, so that the load balancer stops
    /// sending first. Only then it stops accepting (new connections are refused) and lets
    /// in-flight requests finish for at most `shutdown_grace_secs`. Requests still running
    /// then are cut (their clients get no answer; their charges are refunded, see
    /// `http::middleware`), and the refunds get at most [`REFUND_WAIT`] more.
    ///
    /// A hand-written accept loop rather than `axum::serve`, so that hyper gets a timer: a client
    /// that never finishes sending its request head is cut off after `header_read_timeout_secs`
    /// instead of holding a connection forever.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let config = self.state.config.clone();
        let background = self.state.background.clone();
        let grace = Duration::from_secs(config.shutdown_grace_secs);
        let drain_delay = Duration::from_secs(config.shutdown_drain_delay_secs);
        let readiness = self.state.readiness.clone();
        let sweeper = tokio::spawn(sweep_reservations(self.state.store.clone(), config.reservation_expiry()));
        // The metrics listener stays up until everything else has stopped.
        let metrics_server = self.metrics_listener.map(|listener| {
            tokio::spawn(axum::serve(listener, http::metrics_router(self.state.clone())).into_future())
        });
        let router = http::router(self.state);
        let mut builder = ConnectionBuilder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(config.header_read_timeout_secs));
        let graceful = GracefulShutdown::new();
        // The connection tasks, so that those still running at the grace bound can be cut here
        // rather than whenever the runtime is dropped.
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        // Armed by the signal: when it fires, the accept loop ends.
        let drain_end = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(drain_end);
        let mut draining = false;
        loop {
            tokio::select! {
                // Once the drain delay is over, no further connection is accepted, even one
                // already queued.
                biased;
                _ = &mut shutdown, if !draining => {
                    readiness.start_draining();
                    if drain_delay.is_zero() {
                        break;
                    }
                    tracing::info!(
                        drain_delay_secs = drain_delay.as_secs(),
                        "shutdown requested: /readyz answers 503 while requests are still served"
                    );
                    draining = true;
                    drain_end.as_mut().reset(tokio::time::Instant::now() + drain_delay);
                }
                _ = &mut drain_end, if draining => break,
                // Reap finished connections so the set stays as small as the live ones.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = self.listener.accept() => {
                    let stream = match accepted {
                        Ok((stream, _)) => stream,
                        Err(e) => {
                            // Out of file descriptors and the like: back off instead of spinning.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let service = TowerToHyperService::new(router.clone());
                    let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                    let connection = graceful.watch(connection);
                    connections.spawn(async move {
                        // Client resets and timeouts end here; they are not server errors.
                        let _ = connection.await;
                    });
                }
            }
        }
        drop(self.listener);
        sweeper.abort();
        tracing::info!("shutdown requested: refusing new connections, draining in-flight requests");
        tokio::select! {
            _ = graceful.shutdown() => {}
            _ = tokio::time::sleep(grace) => {
                tracing::warn!(
                    grace_secs = grace.as_secs(),
                    connections = connections.len(),
                    "in-flight requests did not finish within the grace period; cutting them"
                );
                connections.abort_all();
            }
        }
        // Aborted tasks drop their requests here, which starts their refunds.
        while connections.join_next().await.is_some() {}
        background.close();
        if tokio::time::timeout(REFUND_WAIT, background.wait()).await.is_err() {
            tracing::error!(pending = background.len(), "refunds of cut requests did not finish before exit");
        }
        if let Some(metrics_server) = metrics_server {
            metrics_server.abort();
        }
        Ok(())
    }
}

/// Refunds, every `expiry / 4` (at most every 30 s) and once at start, the reservations of requests
/// older than `expiry`: those of a replica that died before answering (see `Store::sweep_reservations`).
async fn sweep_reservations(store: idverify_store::Store, expiry: Duration) {
    let every = (expiry / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        match store.sweep_reservations(expiry).await {
            Ok(0) => {}
            Ok(refunded) => tracing::warn!(refunded, "refunded the charges of requests left unanswered"),
            Err(e) => tracing::warn!(error = %e, "reservation sweep failed"),
        }
    }
}

/// How long shutdown waits, after the grace period, for the refunds of the requests it cut.
pub const REFUND_WAIT: Duration = Duration::from_secs(5);

/// SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
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
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}

/// `idverify serve`: everything real, embedded defaults.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let engines = load_engines(&config).await?;
    let readiness = warm_up_engines(&engines, &config).await?;
    let store = connect_store(&config).await?;
    let objects = connect_objects(&config).await?;
    tracing::info!(backend = store.backend(), s3 = objects.is_some(), "dependencies ready");
    let server = Server::bind(build_state(config, engines, readiness, store, objects)).await?;
    tracing::info!(addr = %server.local_addr(), metrics_addr = ?server.metrics_addr(), "listening");
    server.run(shutdown_signal()).await
}
