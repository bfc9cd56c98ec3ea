//! Start-up against a PostgreSQL that requires checking its TLS certificate, through
//! `app::connect_store` as `idverify serve` and the admin commands call it, with the URL coming
//! from `database_url_file`. The cluster is our own (`PG_TLS=1 scripts/pg-start.sh`: a server
//! certificate for `localhost` only, signed by a test CA). Runs under `make test`
//! (IDVERIFY_TEST_DATABASE_URL set); SKIP otherwise.

use idverify::app::connect_store;
use idverify::config::{Config, Overrides};
use idverify_testkit::pg::TlsCluster;

/// The configuration `idverify serve` would load with the URL in a secret file.
fn config_with_url_file(cluster: &TlsCluster, name: &str, url: &str) -> Config {
    let secrets = cluster.dir.join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let file = secrets.join(name);
    std::fs::write(&file, format!("{url}\n")).unwrap();
    let env = [
        ("IDVERIFY_DATABASE_URL_FILE".to_string(), file.display().to_string()),
        ("IDVERIFY_DATABASE_MAX_CONNECTIONS".to_string(), "2".to_string()),
        ("IDVERIFY_DATA_DIR".to_string(), secrets.display().to_string()),
    ];
    Config::load_from(&Overrides::default(), env).expect("config loads")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_refuses_an_unverifiable_database_certificate_clearly() {
    if std::env::var("IDVERIFY_TEST_DATABASE_URL").is_err() {
        eprintln!(
            "SKIP: PostgreSQL TLS start-up test (IDVERIFY_TEST_DATABASE_URL unset; run under `make test`)"
        );
        return;
    }
    let cluster = tokio::task::block_in_place(|| TlsCluster::start("api-tls"));
    let url = |host: &str, ca: &str| {
        format!(
            "postgres://postgres:pw-never-printed@{host}:{}/idverify?sslmode=verify-full&sslrootcert={}",
            cluster.port,
            cluster.cert(ca).display()
        )
    };

    let wrong_ca = config_with_url_file(&cluster, "wrong-ca", &url("localhost", "other-ca.crt"));
    let message = format!("{:#}", connect_store(&wrong_ca).await.expect_err("wrong CA must be refused"));
    eprintln!("wrong CA: {message}");
    assert!(message.starts_with("database: "), "{message}");
    assert!(message.contains("TLS") && message.contains("not signed by a CA in sslrootcert"), "{message}");
    assert!(!message.contains("pw-never-printed"), "{message}");

    let wrong_host = config_with_url_file(&cluster, "wrong-host", &url("127.0.0.1", "ca.crt"));
    let message = format!("{:#}", connect_store(&wrong_host).await.expect_err("wrong host must be refused"));
    eprintln!("wrong host name: {message}");
    assert!(message.contains("TLS") && message.contains("host name"), "{message}");
    assert!(!message.contains("pw-never-printed"), "{message}");

    let right = config_with_url_file(&cluster, "right", &url("localhost", "ca.crt"));
    let store = connect_store(&right).await.expect("verify-full with the right CA and host connects");
    assert_eq!(store.backend(), "postgres");
    assert!(store.connection_encrypted().await.unwrap());
    store.close().await;
}
