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

/// A refusal sent before the body is read (here 401 and 402) must reach a client that writes its
/// whole upload before reading, as curl does: the server reads and drops the body first instead of
/// closing on the upload (which the client sees as a broken pipe or a reset).
#[tokio::test]
async fn a_refused_large_upload_still_gets_its_answer() {
    let app = TestApp::with(Options { tokens: 0, ..Default::default() }).await;
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let (addr, server) = app.serve(stopped).await;
    for (key, status, code) in [
        ("idv_wrong_key".to_string(), "401", "unauthorized"),
        (app.api_key.clone(), "402", "insufficient_tokens"),
    ] {
        let answer =
            tokio::task::spawn_blocking(move || upload_then_read(addr, &key, 8_000_000)).await.unwrap();
        let answer = answer.expect("the whole upload is accepted and the answer arrives");
        assert!(answer.starts_with(&format!("HTTP/1.1 {status}")), "{answer}");
        assert!(answer.contains(code), "{answer}");
    }
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server).await.expect("server exits").unwrap();
}

/// Writes a multipart upload of `size` bytes in full, then reads the answer.
fn upload_then_read(addr: std::net::SocketAddr, key: &str, size: usize) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let boundary = "XBOUNDARY";
    let head =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n\r\n");
    let tail = format!("\r\n--{boundary}--\r\n");
    let length = head.len() + size + tail.len();
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "POST /v1/face/detect HTTP/1.1\r\nHost: test\r\nx-api-key: {key}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n\r\n{head}"
    )?;
    let chunk = vec![0x5Au8; 64 * 1024];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len());
        stream.write_all(&chunk[..n])?;
        left -= n;
    }
    stream.write_all(tail.as_bytes())?;
    let mut answer = vec![0u8; 4096];
    let n = stream.read(&mut answer)?;
    Ok(String::from_utf8_lossy(&answer[..n]).into_owned())
}
