//! Fault injection: the database going away (and coming back) under a running app, and an S3
//! endpoint nobody listens on. Both must fail fast with 503 `dependency_unavailable`, charge
//! nothing, and (for the database) recover without rebuilding the app.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;

async fn detect_selfie(app: &TestApp) -> Reply {
    app.post_multipart("/v1/face/detect", &[("image", Some("selfie.png"), &selfie_png(7))]).await
}

async fn readyz(app: &TestApp) -> Reply {
    app.get("/readyz").await
}

fn assert_dependency_unavailable(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 503, "{what}: {}", reply.json);
    assert_eq!(reply.json["error"]["code"], "dependency_unavailable", "{what}: {}", reply.json);
    assert!(reply.json["requestId"].is_string(), "{what}: {}", reply.json);
    assert!(reply.headers.get("retry-after").is_some(), "{what}: a 503 carries Retry-After");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A throwaway PostgreSQL cluster (scripts/pg-start.sh) that this test may stop and restart;
/// stopped and removed on drop.
struct Cluster {
    dir: PathBuf,
    port: u16,
}

impl Cluster {
    fn script(name: &str) -> PathBuf {
        idverify_testkit::script(name)
    }

    /// Starts (or restarts) the cluster and returns its URL.
    fn start(&self) -> String {
        let out = Command::new("bash")
            .arg(Self::script("pg-start.sh"))
            .arg(&self.dir)
            .arg(self.port.to_string())
            .output()
            .expect("run pg-start.sh");
        assert!(out.status.success(), "pg-start.sh failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn stop(&self) {
        let out = Command::new("bash")
            .arg(Self::script("pg-stop.sh"))
            .arg(&self.dir)
            .output()
            .expect("run pg-stop.sh");
        assert!(out.status.success(), "pg-stop.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(Self::script("pg-stop.sh")).arg(&self.dir).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_fails_fast_and_recovers_without_a_restart() {
    if test_database_url().is_none() {
        eprintln!("SKIP: database outage test (IDVERIFY_TEST_DATABASE_URL unset; run under `make test`)");
        return;
    }
    // Our own cluster, not the suite's shared one: this test stops it.
    let cluster = Cluster {
        dir: std::env::temp_dir().join(format!("idverify-faults-pg-{}", std::process::id())),
        port: free_port(),
    };
    let url = tokio::task::block_in_place(|| cluster.start());
    let app = TestApp::with(Options { database_url: Some(url.clone()), ..Default::default() }).await;

    let ok = detect_selfie(&app).await;
    assert_eq!(ok.status, 200, "{}", ok.json);
    assert_eq!(app.balance().await, 999);
    let ledger_before = app.store.ledger(&app.org_id, 100).await.unwrap();
    let engine_calls = app.face.calls.load(std::sync::atomic::Ordering::SeqCst);

    tokio::task::block_in_place(|| cluster.stop());

    // Reported, but the replica stays in the balancer (readyz_requires_database = false).
    let ready = readyz(&app).await;
    assert_eq!(ready.status, 200, "{}", ready.json);
    assert_eq!(ready.json["database"], json!(false), "{}", ready.json);
    assert_eq!(ready.json["ready"], json!(true), "{}", ready.json);

    for attempt in 0..3 {
        let down = detect_selfie(&app).await;
        assert_dependency_unavailable(&down, &format!("detect while the database is down (#{attempt})"));
        assert!(down.elapsed < Duration::from_secs(5), "took {:?}: must fail fast", down.elapsed);
        eprintln!("database down: detect answered 503 in {:?}", down.elapsed);
    }
    assert_eq!(
        app.face.calls.load(std::sync::atomic::Ordering::SeqCst),
        engine_calls,
        "no engine work without a charge"
    );

    // Back up on the same port: the same app (same pool) must recover by itself.
    let url_again = tokio::task::block_in_place(|| cluster.start());
    assert_eq!(url_again, url);
    let restarted = Instant::now();
    let deadline = restarted + Duration::from_secs(20);
    loop {
        let ready = readyz(&app).await;
        if ready.json["database"] == json!(true) {
            assert_eq!(ready.status, 200, "{}", ready.json);
            eprintln!("database back: readyz reports it after {:?}", restarted.elapsed());
            break;
        }
        assert!(Instant::now() < deadline, "readyz did not recover: {}", ready.json);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Nothing was written while the database was down: the ledger is exactly as before, and its
    // last entry agrees with the balance.
    let ledger_after_outage = app.store.ledger(&app.org_id, 100).await.unwrap();
    assert_eq!(
        ledger_after_outage.iter().map(|e| e.id).collect::<Vec<_>>(),
        ledger_before.iter().map(|e| e.id).collect::<Vec<_>>(),
        "no ledger entry from the outage"
    );
    assert_eq!(app.balance().await, 999);
    let newest = ledger_after_outage.iter().max_by_key(|e| e.id).unwrap();
    assert_eq!(newest.balance_after, 999);

    let again = detect_selfie(&app).await;
    assert_eq!(again.status, 200, "{}", again.json);
    assert_eq!(app.balance().await, 998, "exactly one more charge after recovery");
    let ledger_after = app.store.ledger(&app.org_id, 100).await.unwrap();
    assert_eq!(ledger_after.len(), ledger_before.len() + 1);
    let newest = ledger_after.iter().max_by_key(|e| e.id).unwrap();
    assert_eq!((newest.kind.as_str(), newest.amount, newest.balance_after), ("debit", 1, 998));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_s3_answers_503_within_the_timeout_and_refunds() {
    // Nothing listens on this port once the probe listener is dropped.
    let port = free_port();
    let timeout_ms: u64 = 1000;
    let app = TestApp::with(Options {
        env: vec![
            ("IDVERIFY_S3_ENDPOINT", format!("http://127.0.0.1:{port}")),
            ("IDVERIFY_S3_BUCKET", "idverify-faults".into()),
            ("IDVERIFY_S3_ACCESS_KEY_ID", "faults".into()),
            ("IDVERIFY_S3_SECRET_ACCESS_KEY", "faults-secret".into()),
            ("IDVERIFY_S3_TIMEOUT_MS", timeout_ms.to_string()),
        ],
        ..Default::default()
    })
    .await;
    // A read is two S3 calls (plus the body) each bounded by the timeout; allow scheduling slack.
    let bound = Duration::from_millis(2 * timeout_ms + 1500);
    let reference =
        format!("s3://idverify-faults/orgs/{}/uploads/0f8fad5b-d9cb-469f-a165-70867728950e", app.org_id);

    let detect = app.post_json("/v1/face/detect", json!({ "image": reference })).await;
    assert_dependency_unavailable(&detect, "detect with an s3:// image");
    assert!(detect.elapsed <= bound, "took {:?}, bound {bound:?}", detect.elapsed);
    eprintln!("S3 unreachable: detect answered 503 in {:?} (bound {bound:?})", detect.elapsed);
    assert_eq!(app.balance().await, 1000, "the token is refunded");

    let face = b64(&selfie_png(3));
    let verify =
        app.post_json("/v1/identity/verify", json!({ "documentImage": reference, "faceImage": face })).await;
    assert_dependency_unavailable(&verify, "verify with an s3:// document");
    assert!(verify.elapsed <= bound, "took {:?}, bound {bound:?}", verify.elapsed);
    assert_eq!(app.balance().await, 1000, "the 3 tokens are refunded");

    // Each charge has its refund, and the engines never ran.
    let ledger = app.store.ledger(&app.org_id, 100).await.unwrap();
    let debits: i64 = ledger.iter().filter(|e| e.kind == "debit").map(|e| e.amount).sum();
    let refunds: i64 = ledger.iter().filter(|e| e.kind == "refund").map(|e| e.amount).sum();
    assert_eq!((debits, refunds), (4, 4), "{ledger:?}");
    assert_eq!(app.face.calls.load(std::sync::atomic::Ordering::SeqCst), 0);

    // Reported; by default an S3 outage does not make the replica unready.
    let ready = readyz(&app).await;
    assert_eq!(ready.status, 200, "{}", ready.json);
    assert_eq!(ready.json["objects"], json!(false), "{}", ready.json);
}
