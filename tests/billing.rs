//! Token metering under concurrency, over HTTP, on both store backends: 100 concurrent requests
//! at a balance of 10 give exactly 10 answers and 90 × 402, and the ledger matches.

mod common;

use axum::body::Body;
use axum::http::Request;
use base64::Engine as _;
use common::*;
use tower::ServiceExt;

async fn hundred_requests_at_balance_ten(app: TestApp) {
    let body = serde_json::json!({"image": base64::engine::general_purpose::STANDARD.encode(selfie_png(1))})
        .to_string();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let router = app.router.clone();
            let key = app.api_key.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let req = Request::post("/v1/face/detect")
                    .header("content-type", "application/json")
                    .header("x-api-key", key)
                    .body(Body::from(body))
                    .unwrap();
                router.oneshot(req).await.unwrap().status().as_u16()
            })
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
