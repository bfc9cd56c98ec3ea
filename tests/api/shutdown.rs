//! Shutdown under load, on the real server (`app::Server::run`, the accept loop `idverify serve`
//! uses; the test's oneshot stands in for SIGTERM, which `app::shutdown_signal` turns into the
//! same future). Also: a request cut before it answers (grace bound, request deadline) gives its
//! charge back and releases its idempotency key.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use idverify_store::LedgerEntry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

const TOKENS: i64 = 1000;

fn app_options(delay: Duration, env: Vec<(&'static str, String)>) -> Options {
    let mut env = env;
    // Every request inside the engines at once (the default gate of 4 would queue them).
    env.push(("IDVERIFY_MAX_IN_FLIGHT", "32".into()));
    Options {
        tokens: TOKENS,
        env,
        face: FakeFaceEngine { delay: Some(delay), ..Default::default() },
        ..Default::default()
    }
}

/// One `POST /v1/face/detect` (1 token) on its own connection.
fn detect(
    addr: SocketAddr,
    key: &str,
    idempotency_key: Option<String>,
) -> tokio::task::JoinHandle<reqwest::Result<(u16, serde_json::Value)>> {
    let key = key.to_string();
    tokio::spawn(async move {
        let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        let body = serde_json::json!({"image": b64(&selfie_png(1))});
        let mut request =
            client.post(format!("http://{addr}/v1/face/detect")).header("x-api-key", key).json(&body);
        if let Some(k) = idempotency_key {
            request = request.header("idempotency-key", k);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await?))
    })
}

/// Waits until `n` requests are inside the (fake) face engine.
async fn wait_in_engine(app: &TestApp, n: usize) {
    let started = Instant::now();
    while app.face.calls.load(Ordering::SeqCst) < n {
        assert!(started.elapsed() < Duration::from_secs(10), "requests never reached the engine");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn ledger(app: &TestApp) -> Vec<LedgerEntry> {
    app.store.ledger(&app.org_id, 1000).await.unwrap()
}

/// Debits and refunds per request id.
fn by_request(entries: &[LedgerEntry]) -> HashMap<String, (i64, i64)> {
    let mut map: HashMap<String, (i64, i64)> = HashMap::new();
    for e in entries.iter().filter(|e| e.kind != "credit") {
        let slot = map.entry(e.request_id.clone().expect("a charge names its request")).or_default();
        match e.kind.as_str() {
            "debit" => slot.0 += e.amount,
            "refund" => slot.1 += e.amount,
            other => panic!("unexpected ledger kind {other}"),
        }
    }
    map
}

#[tokio::test]
async fn sigterm_during_load_drains_in_flight_requests_and_refuses_new_connections() {
    const IN_FLIGHT: usize = 12;
    let grace = Duration::from_secs(8);
    let app = TestApp::with(app_options(
        Duration::from_millis(1500),
        vec![("IDVERIFY_SHUTDOWN_GRACE_SECS", grace.as_secs().to_string())],
    ))
    .await;
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let (addr, server) = app.serve(stopped).await;
    let requests: Vec<_> = (0..IN_FLIGHT).map(|_| detect(addr, &app.api_key, None)).collect();
    wait_in_engine(&app, IN_FLIGHT).await;

    let signalled = Instant::now();
    stop.send(()).unwrap();
    // A connection attempted right after the signal is never served: the listener is closed as
    // soon as the accept loop sees the signal; a connection that raced into the kernel's backlog
    // before that is reset, one made after it is refused.
    if let Ok(mut early) = tokio::net::TcpStream::connect(addr).await {
        let _ = early.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await;
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), early.read_to_end(&mut buf)).await;
        assert!(buf.is_empty(), "a connection made after the signal was answered");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = tokio::net::TcpStream::connect(addr).await.expect_err("new connections are refused");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(requests.iter().all(|r| !r.is_finished()), "the engine delay outlasts the checks above");

    // Every in-flight request completes with its normal answer.
    let mut request_ids = Vec::new();
    for request in requests {
        let (status, body) = request.await.unwrap().expect("an in-flight request completes");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["faceDetection"]["faceDetected"], true, "{body}");
        request_ids.push(body["requestId"].as_str().unwrap().to_string());
    }
    tokio::time::timeout(grace, server).await.expect("the server exits within the grace period").unwrap();
    let drained_in = signalled.elapsed();
    assert!(drained_in < grace, "{drained_in:?}");
    println!("drained {IN_FLIGHT} in-flight requests in {drained_in:?} (grace {grace:?})");

    // Each answered request is charged exactly once and not refunded.
    assert_eq!(app.balance().await, TOKENS - IN_FLIGHT as i64);
    let charges = by_request(&ledger(&app).await);
    assert_eq!(charges.len(), IN_FLIGHT);
    for id in &request_ids {
        assert_eq!(charges.get(id), Some(&(1, 0)), "request {id}");
    }
}

#[tokio::test]
async fn requests_still_running_at_the_grace_bound_are_cut_refunded_and_retryable() {
    const IN_FLIGHT: usize = 8;
    let grace = Duration::from_secs(1);
    let engine_delay = Duration::from_secs(4);
    let app = TestApp::with(app_options(
        engine_delay,
        vec![("IDVERIFY_SHUTDOWN_GRACE_SECS", grace.as_secs().to_string())],
    ))
    .await;
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let (addr, server) = app.serve(stopped).await;
    let keys: Vec<String> = (0..IN_FLIGHT).map(|i| format!("cut-{i}-{}", uuid_like())).collect();
    let requests: Vec<_> = keys.iter().map(|k| detect(addr, &app.api_key, Some(k.clone()))).collect();
    wait_in_engine(&app, IN_FLIGHT).await;
    assert_eq!(app.balance().await, TOKENS - IN_FLIGHT as i64, "charged before the engines run");

    let signalled = Instant::now();
    stop.send(()).unwrap();
    // The serve future ends at the grace bound (plus the bounded wait for refunds), well before
    // the engines would have finished.
    tokio::time::timeout(grace + Duration::from_secs(3), server)
        .await
        .expect("the server exits in bounded time")
        .unwrap();
    let stopped_in = signalled.elapsed();
    assert!(stopped_in >= grace && stopped_in < engine_delay, "{stopped_in:?}");
    println!("cut {IN_FLIGHT} requests at the grace bound; server stopped after {stopped_in:?}");
    for request in requests {
        assert!(request.await.unwrap().is_err(), "a request cut at the grace bound gets no answer");
    }

    // No answer, no charge: each cut request's debit has its refund, nothing half-written.
    assert_eq!(app.balance().await, TOKENS);
    let charges = by_request(&ledger(&app).await);
    assert_eq!(charges.len(), IN_FLIGHT);
    assert!(charges.values().all(|c| *c == (1, 1)), "{charges:?}");

    // Their idempotency keys were released: a retry after a restart runs and is charged once.
    let (_stop, stopped) = tokio::sync::oneshot::channel();
    let (addr, _server) = app.serve(stopped).await;
    let (status, body) = detect(addr, &app.api_key, Some(keys[0].clone())).await.unwrap().unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.balance().await, TOKENS - 1);
}

#[tokio::test]
async fn a_request_past_its_deadline_is_refunded_and_its_idempotency_key_released() {
    let app = TestApp::with(app_options(
        Duration::from_millis(2500),
        vec![("IDVERIFY_REQUEST_TIMEOUT_SECS", "1".into())],
    ))
    .await;
    let (_stop, stopped) = tokio::sync::oneshot::channel();
    let (addr, _server) = app.serve(stopped).await;
    let key = format!("deadline-{}", uuid_like());
    for attempt in 0..2 {
        let (status, body) = detect(addr, &app.api_key, Some(key.clone())).await.unwrap().unwrap();
        // Not 409 on the immediate retry: the 503 is sent once the key is released.
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (503, Some("timeout")),
            "attempt {attempt}: {body}"
        );
        // ... and once the charge is refunded.
        assert_eq!(app.balance().await, TOKENS, "attempt {attempt}");
    }
    let charges = by_request(&ledger(&app).await);
    assert_eq!(charges.len(), 2);
    assert!(charges.values().all(|c| *c == (1, 1)), "{charges:?}");
}
