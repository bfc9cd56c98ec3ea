//! The app on a real socket (port 0): graceful shutdown lets an in-flight request finish.

use std::time::Duration;

use crate::common::*;

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
    let body = serde_json::json!({"image": b64(&selfie_png(1))});
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

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::with(Options {
        env: vec![("IDVERIFY_HEADER_READ_TIMEOUT_SECS", "1".into())],
        ..Default::default()
    })
    .await;
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let (addr, server) = app.serve(stopped).await;
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "the server must close a connection whose head never completes");
    // Other clients are served meanwhile and afterwards.
    let ok = reqwest::get(format!("http://{addr}/healthz")).await.unwrap();
    assert_eq!(ok.status(), 200);
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server).await.expect("server exits").unwrap();
}
