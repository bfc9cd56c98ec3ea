//! Against a real SeaweedFS (start one with `scripts/s3-start.sh DIR PORT`, then export its lines with
//! the `IDVERIFY_TEST_S3_` prefix instead of `IDVERIFY_S3_`). Without `IDVERIFY_TEST_S3_ENDPOINT`
//! these tests print `SKIP` and pass; the unreachable-endpoint tests need no server.

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use idverify_objects::{ObjectError, ObjectStore, ObjectStoreConfig, PresignedUpload, S3Ref, org_prefix};

struct TestS3 {
    endpoint: String,
    bucket: String,
    access_key_id: String,
    secret_access_key: String,
    region: String,
}

fn test_s3(test: &str) -> Option<TestS3> {
    let Ok(endpoint) = std::env::var("IDVERIFY_TEST_S3_ENDPOINT") else {
        eprintln!("SKIP: {test}: IDVERIFY_TEST_S3_ENDPOINT is not set (see scripts/s3-start.sh)");
        return None;
    };
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| panic!("{name} must be set with IDVERIFY_TEST_S3_ENDPOINT"))
    };
    Some(TestS3 {
        endpoint,
        bucket: std::env::var("IDVERIFY_TEST_S3_BUCKET").unwrap_or_else(|_| "idverify-uploads".to_owned()),
        access_key_id: var("IDVERIFY_TEST_S3_ACCESS_KEY_ID"),
        secret_access_key: var("IDVERIFY_TEST_S3_SECRET_ACCESS_KEY"),
        region: std::env::var("IDVERIFY_TEST_S3_REGION").unwrap_or_else(|_| "us-east-1".to_owned()),
    })
}

impl TestS3 {
    fn config(&self) -> ObjectStoreConfig {
        ObjectStoreConfig {
            endpoint: Some(self.endpoint.clone()),
            region: self.region.clone(),
            bucket: self.bucket.clone(),
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            force_path_style: true,
            presign_ttl: Duration::from_secs(300),
            max_object_bytes: 15_000_000,
            delete_after_read: false,
            timeout: Duration::from_secs(10),
        }
    }

    async fn store_with(&self, adjust: impl FnOnce(&mut ObjectStoreConfig)) -> ObjectStore {
        let mut cfg = self.config();
        adjust(&mut cfg);
        let store = ObjectStore::new(cfg).await.expect("store");
        store.ensure_bucket().await.expect("ensure_bucket");
        store
    }
}

/// A fresh org per test so tests never see each other's objects.
fn fresh_org() -> String {
    format!("test-{}", uuid::Uuid::new_v4().simple())
}

/// Deterministic non-image payload: the store is byte-agnostic.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// PUTs `body` to the presigned URL with curl and returns the HTTP status. `content_type: None` sends
/// no Content-Type header at all.
fn curl_put(upload: &PresignedUpload, content_type: Option<&str>, body: &[u8]) -> u16 {
    let path = std::env::temp_dir().join(format!("idverify-objects-{}.bin", uuid::Uuid::new_v4().simple()));
    std::fs::File::create(&path).and_then(|mut f| f.write_all(body)).expect("write temp body");
    let header = match content_type {
        Some(ct) => format!("Content-Type: {ct}"),
        None => "Content-Type:".to_owned(),
    };
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20", "--output", "/dev/null"])
        .args(["--write-out", "%{http_code}", "--request", upload.method, "--header", &header])
        .arg("--data-binary")
        .arg(format!("@{}", path.display()))
        .arg(&upload.url)
        .output()
        .expect("run curl");
    let _ = std::fs::remove_file(&path);
    assert!(output.status.success(), "curl failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().parse().expect("http status")
}

fn content_type_of(upload: &PresignedUpload) -> &str {
    upload
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str())
        .unwrap()
}

async fn upload(store: &ObjectStore, org: &str, body: &[u8]) -> S3Ref {
    let upload = store.presign_upload(org, "image/jpeg").await.expect("presign");
    assert_eq!(curl_put(&upload, Some(content_type_of(&upload)), body), 200);
    S3Ref::parse(&upload.uri).expect("uri parses")
}

#[tokio::test]
async fn presigned_upload_then_read_returns_the_bytes() {
    let Some(s3) = test_s3("presigned_upload_then_read_returns_the_bytes") else { return };
    let store = s3.store_with(|_| {}).await;
    store.ping().await.expect("ping");
    let org = fresh_org();
    let body = payload(200_000);

    let upload = store.presign_upload(&org, "image/png").await.unwrap();
    assert_eq!(upload.method, "PUT");
    assert_eq!(content_type_of(&upload), "image/png");
    assert!(upload.key.starts_with(&org_prefix(&org)));
    assert_eq!(curl_put(&upload, Some("image/png"), &body), 200);

    let reference = S3Ref::parse(&upload.uri).unwrap();
    assert_eq!(reference.bucket, store.bucket());
    assert_eq!(store.read_for_org(&org, &reference).await.unwrap(), body);
    // Without delete_after_read the object stays readable.
    assert_eq!(store.read_for_org(&org, &reference).await.unwrap(), body);
}

#[tokio::test]
async fn expired_presigned_url_is_refused_by_the_server() {
    let Some(s3) = test_s3("expired_presigned_url_is_refused_by_the_server") else { return };
    let store = s3.store_with(|cfg| cfg.presign_ttl = Duration::from_secs(1)).await;
    let org = fresh_org();
    let upload = store.presign_upload(&org, "image/jpeg").await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(curl_put(&upload, Some("image/jpeg"), &payload(1000)), 403);
    let reference = S3Ref::parse(&upload.uri).unwrap();
    assert!(matches!(store.read_for_org(&org, &reference).await, Err(ObjectError::Forbidden)));
}

#[tokio::test]
async fn upload_with_another_content_type_is_refused_by_the_server() {
    let Some(s3) = test_s3("upload_with_another_content_type_is_refused_by_the_server") else { return };
    let store = s3.store_with(|_| {}).await;
    let org = fresh_org();
    let upload = store.presign_upload(&org, "image/jpeg").await.unwrap();
    assert_eq!(curl_put(&upload, Some("text/html"), b"<script>alert(1)</script>"), 403);
    assert_eq!(curl_put(&upload, Some("image/png"), &payload(1000)), 403);
    assert_eq!(curl_put(&upload, None, &payload(1000)), 403);
    let reference = S3Ref::parse(&upload.uri).unwrap();
    assert!(matches!(store.read_for_org(&org, &reference).await, Err(ObjectError::Forbidden)));
    // The same URL still works with the signed content type.
    assert_eq!(curl_put(&upload, Some("image/jpeg"), &payload(1000)), 200);
    assert_eq!(store.read_for_org(&org, &reference).await.unwrap(), payload(1000));
}

#[tokio::test]
async fn other_orgs_objects_and_missing_objects_are_equally_forbidden() {
    let Some(s3) = test_s3("other_orgs_objects_and_missing_objects_are_equally_forbidden") else { return };
    let store = s3.store_with(|_| {}).await;
    let owner = fresh_org();
    let intruder = fresh_org();
    let reference = upload(&store, &owner, &payload(5000)).await;

    let foreign = store.read_for_org(&intruder, &reference).await;
    let missing_ref = S3Ref {
        bucket: store.bucket().to_owned(),
        key: format!("{}{}", org_prefix(&intruder), uuid::Uuid::new_v4()),
    };
    let missing = store.read_for_org(&intruder, &missing_ref).await;
    assert!(matches!(foreign, Err(ObjectError::Forbidden)), "{foreign:?}");
    assert!(matches!(missing, Err(ObjectError::Forbidden)), "{missing:?}");
    assert_eq!(format!("{:?}", foreign.unwrap_err()), format!("{:?}", missing.unwrap_err()));
    // The owner still reads it.
    assert_eq!(store.read_for_org(&owner, &reference).await.unwrap(), payload(5000));
}

#[tokio::test]
async fn path_tricks_are_forbidden_even_when_they_would_resolve_to_an_object() {
    let Some(s3) = test_s3("path_tricks_are_forbidden_even_when_they_would_resolve_to_an_object") else {
        return;
    };
    let store = s3.store_with(|_| {}).await;
    let victim = fresh_org();
    let attacker = fresh_org();
    let reference = upload(&store, &victim, &payload(100)).await;
    let id = reference.key.rsplit('/').next().unwrap().to_owned();
    let bucket = store.bucket().to_owned();
    let attacker_prefix = org_prefix(&attacker);
    let tricks = [
        format!("{attacker_prefix}../../{victim}/uploads/{id}"),
        format!("{attacker_prefix}%2e%2e/%2e%2e/{victim}/uploads/{id}"),
        format!("{attacker_prefix}..%2F..%2F{victim}%2Fuploads%2F{id}"),
        format!("{attacker_prefix}..\\..\\{victim}\\uploads\\{id}"),
        format!("{attacker_prefix}/{id}"),
        format!("/{}", reference.key),
        format!("{attacker_prefix}./{id}"),
    ];
    for key in tricks {
        let trick = S3Ref { bucket: bucket.clone(), key };
        assert!(
            matches!(store.read_for_org(&attacker, &trick).await, Err(ObjectError::Forbidden)),
            "{trick}"
        );
    }
    // Right key, another bucket (which exists and holds nothing of ours).
    let other_bucket = S3Ref { bucket: format!("{bucket}-other"), key: reference.key.clone() };
    assert!(matches!(store.read_for_org(&victim, &other_bucket).await, Err(ObjectError::Forbidden)));
    // A parse of the uploaded reference with `//` is a different, forbidden key.
    let doubled = S3Ref::parse(&format!("s3://{bucket}//{}", reference.key)).unwrap();
    assert!(matches!(store.read_for_org(&victim, &doubled).await, Err(ObjectError::Forbidden)));
}

#[tokio::test]
async fn objects_over_the_limit_are_too_large() {
    let Some(s3) = test_s3("objects_over_the_limit_are_too_large") else { return };
    let store = s3.store_with(|cfg| cfg.max_object_bytes = 4096).await;
    let org = fresh_org();
    let big = upload(&store, &org, &payload(10_000)).await;
    let at_limit = upload(&store, &org, &payload(4096)).await;
    let result = store.read_for_org(&org, &big).await;
    assert!(matches!(result, Err(ObjectError::TooLarge { size: 10_000 })), "{result:?}");
    assert_eq!(store.read_for_org(&org, &at_limit).await.unwrap(), payload(4096));
}

#[tokio::test]
async fn delete_after_read_deletes_the_object() {
    let Some(s3) = test_s3("delete_after_read_deletes_the_object") else { return };
    let deleting = s3.store_with(|cfg| cfg.delete_after_read = true).await;
    let keeping = s3.store_with(|_| {}).await;
    let org = fresh_org();
    let reference = upload(&deleting, &org, &payload(3000)).await;
    assert_eq!(keeping.read_for_org(&org, &reference).await.unwrap(), payload(3000));
    assert_eq!(deleting.read_for_org(&org, &reference).await.unwrap(), payload(3000));
    assert!(matches!(keeping.read_for_org(&org, &reference).await, Err(ObjectError::Forbidden)));
    assert!(matches!(deleting.read_for_org(&org, &reference).await, Err(ObjectError::Forbidden)));
}

#[tokio::test]
async fn ensure_bucket_creates_a_missing_bucket_once() {
    let Some(s3) = test_s3("ensure_bucket_creates_a_missing_bucket_once") else { return };
    let bucket = format!("idverify-test-{}", uuid::Uuid::new_v4().simple());
    let store = ObjectStore::new(ObjectStoreConfig { bucket, ..s3.config() }).await.unwrap();
    assert!(matches!(store.ping().await, Err(ObjectError::Unavailable(_))), "missing bucket is not ready");
    store.ensure_bucket().await.unwrap();
    store.ensure_bucket().await.unwrap();
    store.ping().await.unwrap();
}

#[tokio::test]
async fn wrong_credentials_are_unavailable_not_forbidden() {
    let Some(s3) = test_s3("wrong_credentials_are_unavailable_not_forbidden") else { return };
    let store = ObjectStore::new(ObjectStoreConfig { secret_access_key: "wrong".to_owned(), ..s3.config() })
        .await
        .unwrap();
    assert!(matches!(store.ping().await, Err(ObjectError::Unavailable(_))));
}

fn unreachable_config(endpoint: &str, timeout: Duration) -> ObjectStoreConfig {
    ObjectStoreConfig {
        endpoint: Some(endpoint.to_owned()),
        region: "us-east-1".to_owned(),
        bucket: "idverify-uploads".to_owned(),
        access_key_id: "AKIDFAKE".to_owned(),
        secret_access_key: "fake-secret".to_owned(),
        force_path_style: true,
        presign_ttl: Duration::from_secs(60),
        max_object_bytes: 1000,
        delete_after_read: false,
        timeout,
    }
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn refused_connection_is_unavailable_within_the_timeout() {
    let timeout = Duration::from_secs(2);
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let store = ObjectStore::new(unreachable_config(&endpoint, timeout)).await.unwrap();
    let reference = S3Ref { bucket: "idverify-uploads".to_owned(), key: "orgs/org1/uploads/x".to_owned() };
    let started = Instant::now();
    let result = store.read_for_org("org1", &reference).await;
    assert!(matches!(result, Err(ObjectError::Unavailable(_))), "{result:?}");
    assert!(matches!(store.ping().await, Err(ObjectError::Unavailable(_))));
    assert!(started.elapsed() < timeout * 2 + Duration::from_millis(500), "{:?}", started.elapsed());
}
