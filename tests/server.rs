//! The app on a real socket (port 0): graceful shutdown lets an in-flight request finish.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::*;

#[tokio::test]
async fn in_flight_requests_finish_during_graceful_shutdown() {
    let app = TestApp::with(Options {
        face: FakeFaceEngine { delay: Some(Duration::from_millis(700)), ..Default::default() },
        ..Default::default()
    })
    .await;
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let (addr, server) = app.serve(stopped).await;
    let client = reqwest::Client::new();
    let body = serde_json::json!({"image": base64::engine::general_purpose::STANDARD.encode(selfie_png(1))});
    let in_flight = tokio::spawn({
        let client = client.clone();
        let key = app.api_key.clone();
        async move {
            client
                .post(format!("http://{addr}/v1/face/detect"))
                .header("x-api-key", key)
                .json(&body)
                .send()
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).unwrap();
    let response = in_flight.await.unwrap().expect("the in-flight request completes");
    assert_eq!(response.status(), 200);
    tokio::time::timeout(Duration::from_secs(5), server).await.expect("server exits").unwrap();
    // New connections are refused once it has stopped.
    assert!(client.get(format!("http://{addr}/healthz")).send().await.is_err());
}
