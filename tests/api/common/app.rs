//! `TestApp`: the real router and state over the real store (SQLite in a temporary directory, or
//! PostgreSQL) and the fake engines; `Options` to vary it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use idverify::config::{Config, Overrides};
use idverify::engines::Engines;
use idverify_store::{Store, StoreConfig};

use super::fakes::{FakeDocumentScanner, FakeFaceEngine};

pub struct TestApp {
    pub router: Router,
    pub state: idverify::http::AppState,
    pub store: Store,
    pub org_id: String,
    pub api_key: String,
    pub face: Arc<FakeFaceEngine>,
    pub document: Arc<FakeDocumentScanner>,
    _dir: tempdir::Dir,
}

pub mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    pub fn new(label: &str) -> Dir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("idverify-{label}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}

pub struct Options {
    pub tokens: i64,
    pub env: Vec<(&'static str, String)>,
    pub face: FakeFaceEngine,
    /// A PostgreSQL URL to use instead of SQLite (see `test_database_url`).
    pub database_url: Option<String>,
    /// Use the S3 server named by `IDVERIFY_TEST_S3_*`.
    pub s3: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { tokens: 1000, env: vec![], face: FakeFaceEngine::default(), database_url: None, s3: false }
    }
}

pub fn test_database_url() -> Option<String> {
    std::env::var("IDVERIFY_TEST_DATABASE_URL").ok().filter(|s| !s.is_empty())
}

/// `IDVERIFY_TEST_S3_*` as `IDVERIFY_S3_*` config entries, when a test S3 server is running.
pub fn test_s3_env() -> Option<Vec<(String, String)>> {
    std::env::var("IDVERIFY_TEST_S3_ENDPOINT").ok().filter(|s| !s.is_empty())?;
    Some(
        std::env::vars()
            .filter_map(|(k, v)| {
                k.strip_prefix("IDVERIFY_TEST_S3_").map(|rest| (format!("IDVERIFY_S3_{rest}"), v))
            })
            .collect(),
    )
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::with(Options::default()).await
    }

    pub async fn with(options: Options) -> TestApp {
        let dir = tempdir::new("api");
        let mut env: Vec<(String, String)> = vec![
            ("IDVERIFY_LISTEN".into(), "127.0.0.1:0".into()),
            ("IDVERIFY_DATA_DIR".into(), dir.0.display().to_string()),
            ("IDVERIFY_RATE_LIMIT_BURST".into(), "1000".into()),
            ("IDVERIFY_RATE_LIMIT_PER_SECOND".into(), "1000".into()),
            // Stop at once on the shutdown signal; the drain delay's own test sets it.
            ("IDVERIFY_SHUTDOWN_DRAIN_DELAY_SECS".into(), "0".into()),
        ];
        env.extend(options.env.iter().map(|(k, v)| (k.to_string(), v.clone())));
        if options.s3 {
            env.extend(test_s3_env().expect("IDVERIFY_TEST_S3_ENDPOINT must be set for an S3 test"));
        }
        let config = Config::load_from(&Overrides::default(), env).unwrap();
        let store = Store::connect(&StoreConfig {
            data_dir: dir.0.clone(),
            database_url: options.database_url,
            ..Default::default()
        })
        .await
        .unwrap();
        let objects = idverify::app::connect_objects(&config).await.unwrap();
        let org = store.create_org(&format!("org-{}", uuid_like()), options.tokens).await.unwrap();
        let key = store.create_key(&org.id, "test").await.unwrap();
        let face = Arc::new(options.face);
        let document = Arc::new(FakeDocumentScanner::default());
        let engines = Engines { face: face.clone(), document: document.clone() };
        let readiness = idverify::app::warm_up_engines(&engines, &config).await.unwrap();
        let state = idverify::app::build_state(config, engines, readiness, store.clone(), objects);
        TestApp {
            router: idverify::http::router(state.clone()),
            state,
            store,
            org_id: org.id,
            api_key: key.secret,
            face,
            document,
            _dir: dir,
        }
    }

    pub async fn balance(&self) -> i64 {
        self.store.balance(&self.org_id).await.unwrap()
    }

    /// The same app served by the real server (`app::Server`) on an ephemeral port.
    pub async fn serve(
        &self,
        shutdown: tokio::sync::oneshot::Receiver<()>,
    ) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let server = idverify::app::Server::bind(self.state.clone()).await.unwrap();
        let addr = server.local_addr();
        let handle = tokio::spawn(async move {
            server
                .run(async move {
                    let _ = shutdown.await;
                })
                .await
                .unwrap();
        });
        (addr, handle)
    }
}

pub fn uuid_like() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
    )
}
