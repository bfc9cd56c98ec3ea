//! Token metering under concurrency, over HTTP, on both store backends: 100 concurrent requests
//! at a balance of 10 give exactly 10 answers and 90 × 402, and the ledger matches.

use std::sync::Arc;

use crate::common::*;

async fn hundred_requests_at_balance_ten(app: TestApp) {
    let app = Arc::new(app);
    let body = serde_json::json!({"image": b64(&selfie_png(1))});
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let app = app.clone();
            let body = body.clone();
            tokio::spawn(async move { app.post_json("/v1/face/detect", body).await.status.as_u16() })
        })
        .collect();
    let mut ok = 0;
    let mut payment_required = 0;
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            402 => payment_required += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((ok, payment_required), (10, 90));
    assert_eq!(app.balance().await, 0);
    let ledger = app.store.ledger(&app.org_id, 1000).await.unwrap();
    let debits: i64 = ledger.iter().filter(|e| e.kind == "debit").map(|e| e.amount.abs()).sum();
    let credits: i64 = ledger.iter().filter(|e| e.kind == "credit").map(|e| e.amount.abs()).sum();
    let refunds: i64 = ledger.iter().filter(|e| e.kind == "refund").map(|e| e.amount.abs()).sum();
    assert_eq!(credits - debits + refunds, 0, "the ledger sums to the balance: {ledger:?}");
    assert_eq!(debits - refunds, 10);
    assert!(
        ledger
            .iter()
            .filter(|e| e.kind == "debit")
            .all(|e| e.request_id.is_some() && e.endpoint.as_deref() == Some("/v1/face/detect"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_never_overdraw_sqlite() {
    hundred_requests_at_balance_ten(TestApp::with(Options { tokens: 10, ..Default::default() }).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_never_overdraw_postgres() {
    if test_database_url().is_none() {
        eprintln!("SKIP: postgres billing test (IDVERIFY_TEST_DATABASE_URL unset)");
        return;
    }
    hundred_requests_at_balance_ten(
        TestApp::with(Options { tokens: 10, database_url: test_database_url(), ..Default::default() }).await,
    )
    .await;
}

/// A charge is captured when its answer is delivered: once the last byte of an answer without an
/// Idempotency-Key is handed out, or when an answer with one is stored for replay. An answer whose
/// body is dropped unsent (the client went away) is refunded, and the sweep then finds nothing.
#[tokio::test]
async fn a_charge_is_captured_when_its_answer_is_delivered_and_refunded_when_dropped_unsent() {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    let app = TestApp::with(Options { tokens: 10, ..Default::default() }).await;
    let body = serde_json::json!({"image": b64(&selfie_png(1))});
    let open = || async { app.store.open_reservations().await.unwrap() };

    assert_eq!(app.post_json("/v1/face/detect", body.clone()).await.status, 200);
    for _ in 0..100 {
        if open().await == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(open().await, 0, "the answer read to its end captured its charge");

    let keyed = app.post("/v1/face/detect").header("Idempotency-Key", "capture-1").json(body.clone()).await;
    assert_eq!(keyed.status, 200);
    assert_eq!(open().await, 0, "storing the answer for replay captured its charge");

    let request = Request::post("/v1/face/detect")
        .header("x-api-key", &app.api_key)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!((app.balance().await, open().await), (7, 1), "charged, held until delivered");
    drop(response);
    for _ in 0..100 {
        if app.balance().await == 8 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!((app.balance().await, open().await), (8, 0), "the undelivered answer was refunded");
    assert_eq!(app.store.sweep_reservations(std::time::Duration::ZERO).await.unwrap(), 0);
    assert_eq!(app.balance().await, 8);
}
