//! Failure modes a healthy SeaweedFS will not produce, against a tiny fake HTTP server (a fake,
//! named as such): persistent 5xx, a server that never answers, and a body larger than announced.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use idverify_objects::{ObjectError, ObjectStore, ObjectStoreConfig, S3Ref};

#[derive(Clone, Copy)]
enum FakeBehaviour {
    /// Every request gets `503 Slow Down`.
    AlwaysUnavailable,
    /// Connections are accepted and read, never answered.
    NeverAnswers,
    /// HEAD announces 10 bytes; GET streams `get_bytes` chunked bytes without a length.
    BodyLargerThanAnnounced { get_bytes: usize },
}

struct FakeS3 {
    endpoint: String,
    requests: Arc<AtomicUsize>,
    bytes_sent: Arc<AtomicUsize>,
}

fn start_fake_s3(behaviour: FakeBehaviour) -> FakeS3 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let bytes_sent = Arc::new(AtomicUsize::new(0));
    let (req, sent) = (requests.clone(), bytes_sent.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (req, sent) = (req.clone(), sent.clone());
            std::thread::spawn(move || serve(stream, behaviour, &req, &sent));
        }
    });
    FakeS3 { endpoint, requests, bytes_sent }
}

fn serve(stream: TcpStream, behaviour: FakeBehaviour, requests: &AtomicUsize, bytes_sent: &AtomicUsize) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
    }
    requests.fetch_add(1, Ordering::SeqCst);
    let mut stream = stream;
    let method = request_line.split(' ').next().unwrap_or("");
    match behaviour {
        FakeBehaviour::AlwaysUnavailable => {
            let body = "<Error><Code>SlowDown</Code><Message>fake</Message></Error>";
            let _ = write!(
                stream,
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        FakeBehaviour::NeverAnswers => std::thread::sleep(Duration::from_secs(30)),
        FakeBehaviour::BodyLargerThanAnnounced { get_bytes } => {
            if method == "HEAD" {
                let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n");
                return;
            }
            let _ =
                write!(stream, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
            let chunk = vec![b'x'; 1024];
            let mut remaining = get_bytes;
            while remaining > 0 {
                let n = remaining.min(chunk.len());
                if write!(stream, "{n:x}\r\n")
                    .and_then(|_| stream.write_all(&chunk[..n]))
                    .and_then(|_| stream.write_all(b"\r\n"))
                    .is_err()
                {
                    return;
                }
                bytes_sent.fetch_add(n, Ordering::SeqCst);
                remaining -= n;
            }
            let _ = stream.write_all(b"0\r\n\r\n");
        }
    }
}

fn config(endpoint: &str, timeout: Duration, max_object_bytes: u64) -> ObjectStoreConfig {
    ObjectStoreConfig {
        endpoint: Some(endpoint.to_owned()),
        region: "us-east-1".to_owned(),
        bucket: "idverify-uploads".to_owned(),
        access_key_id: "AKIDFAKE".to_owned(),
        secret_access_key: "fake-secret".to_owned(),
        force_path_style: true,
        presign_ttl: Duration::from_secs(60),
        max_object_bytes,
        delete_after_read: false,
        timeout,
    }
}

fn own_reference() -> S3Ref {
    S3Ref { bucket: "idverify-uploads".to_owned(), key: "orgs/org1/uploads/abc".to_owned() }
}

#[tokio::test]
async fn persistent_5xx_is_retried_then_unavailable() {
    let fake = start_fake_s3(FakeBehaviour::AlwaysUnavailable);
    let store = ObjectStore::new(config(&fake.endpoint, Duration::from_secs(10), 1000)).await.unwrap();
    let result = store.read_for_org("org1", &own_reference()).await;
    assert!(matches!(result, Err(ObjectError::Unavailable(_))), "{result:?}");
    // One HEAD, tried three times with backoff, never a GET.
    assert_eq!(fake.requests.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn silent_server_is_unavailable_within_the_timeout() {
    let fake = start_fake_s3(FakeBehaviour::NeverAnswers);
    let timeout = Duration::from_secs(2);
    let store = ObjectStore::new(config(&fake.endpoint, timeout, 1000)).await.unwrap();
    let started = Instant::now();
    let result = store.read_for_org("org1", &own_reference()).await;
    let elapsed = started.elapsed();
    assert!(matches!(result, Err(ObjectError::Unavailable(_))), "{result:?}");
    assert!(elapsed < timeout + Duration::from_millis(500), "took {elapsed:?}");
    let started = Instant::now();
    assert!(matches!(store.ping().await, Err(ObjectError::Unavailable(_))));
    assert!(started.elapsed() < timeout + Duration::from_millis(500));
}

#[tokio::test]
async fn body_larger_than_announced_stops_past_the_limit() {
    let fake = start_fake_s3(FakeBehaviour::BodyLargerThanAnnounced { get_bytes: 64 * 1024 * 1024 });
    let store = ObjectStore::new(config(&fake.endpoint, Duration::from_secs(10), 100_000)).await.unwrap();
    let result = store.read_for_org("org1", &own_reference()).await;
    assert!(matches!(result, Err(ObjectError::TooLarge { size }) if size > 100_000), "{result:?}");
    // The read stopped early: far less than the 64 MiB on offer left the fake (socket buffers aside).
    std::thread::sleep(Duration::from_millis(200));
    let sent = fake.bytes_sent.load(Ordering::SeqCst);
    assert!(sent < 16 * 1024 * 1024, "fake sent {sent} bytes");
}

#[tokio::test]
async fn https_endpoint_goes_through_rustls_and_fails_cleanly_on_a_plain_http_server() {
    // Proves the ring-backed TLS client is wired in (a missing crypto provider would panic here).
    let fake = start_fake_s3(FakeBehaviour::AlwaysUnavailable);
    let endpoint = fake.endpoint.replace("http://", "https://");
    let store = ObjectStore::new(config(&endpoint, Duration::from_secs(3), 1000)).await.unwrap();
    let started = Instant::now();
    let result = store.read_for_org("org1", &own_reference()).await;
    assert!(matches!(result, Err(ObjectError::Unavailable(_))), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
}
