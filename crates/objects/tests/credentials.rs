//! The AWS default credential chain (no static keys configured) against a real SeaweedFS: the
//! environment and profile-file sources, and the start-up check when nothing provides credentials.
//!
//! Each case runs in a child process (this test binary, re-run with one test selected) whose
//! environment is exactly what the case gives, so no case depends on or races with this process's
//! environment. IMDS is disabled in the children (`AWS_EC2_METADATA_DISABLED`) except in the case
//! that checks it cannot hold start-up for long. Without `IDVERIFY_TEST_S3_ENDPOINT` (see
//! scripts/s3-start.sh) the SeaweedFS cases print SKIP.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use idverify_objects::{ObjectError, ObjectStore, ObjectStoreConfig, S3Ref};

/// Set in a child to what it must find: `ok`, `rejected` (keys found, refused by the server) or
/// `none` (no credentials anywhere).
const CHILD_ENV: &str = "IDVERIFY_CREDENTIALS_CHILD";
const TIMEOUT: Duration = Duration::from_secs(3);

struct TestS3 {
    endpoint: String,
    bucket: String,
    region: String,
    access_key_id: String,
    secret_access_key: String,
}

fn test_s3(test: &str) -> Option<TestS3> {
    let Ok(endpoint) = std::env::var("IDVERIFY_TEST_S3_ENDPOINT") else {
        eprintln!("SKIP: {test}: IDVERIFY_TEST_S3_ENDPOINT is not set (see scripts/s3-start.sh)");
        return None;
    };
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} must be set"));
    Some(TestS3 {
        endpoint,
        bucket: std::env::var("IDVERIFY_TEST_S3_BUCKET").unwrap_or_else(|_| "idverify-uploads".to_owned()),
        region: std::env::var("IDVERIFY_TEST_S3_REGION").unwrap_or_else(|_| "us-east-1".to_owned()),
        access_key_id: var("IDVERIFY_TEST_S3_ACCESS_KEY_ID"),
        secret_access_key: var("IDVERIFY_TEST_S3_SECRET_ACCESS_KEY"),
    })
}

/// Runs test `name` in a child whose environment is `env` plus PATH (curl) and the SeaweedFS
/// location, with HOME an empty directory so no real `~/.aws` is read.
fn run_child(name: &str, expect: &str, home: &Path, s3: Option<&TestS3>, env: &[(&str, String)]) {
    let mut child = Command::new(std::env::current_exe().expect("test binary"));
    child
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env(CHILD_ENV, expect);
    if let Some(s3) = s3 {
        child
            .env("IDVERIFY_TEST_S3_ENDPOINT", &s3.endpoint)
            .env("IDVERIFY_TEST_S3_BUCKET", &s3.bucket)
            .env("IDVERIFY_TEST_S3_REGION", &s3.region);
    }
    for (key, value) in env {
        child.env(key, value);
    }
    let output = child.output().expect("child process runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child {name} ({expect}) failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// In a child: a store with no static keys, checked against what the parent expects.
async fn child_checks(expect: &str) {
    let endpoint = std::env::var("IDVERIFY_TEST_S3_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:9".into());
    let config = ObjectStoreConfig {
        endpoint: Some(endpoint),
        region: std::env::var("IDVERIFY_TEST_S3_REGION").unwrap_or_else(|_| "us-east-1".into()),
        bucket: std::env::var("IDVERIFY_TEST_S3_BUCKET").unwrap_or_else(|_| "idverify-uploads".into()),
        access_key_id: String::new(),
        secret_access_key: String::new(),
        force_path_style: true,
        presign_ttl: Duration::from_secs(300),
        max_object_bytes: 1_000_000,
        delete_after_read: false,
        timeout: TIMEOUT,
    };
    let store = ObjectStore::new(config).await.expect("a store without keys builds");
    let started = Instant::now();
    let checked = store.check_credentials().await;
    let elapsed = started.elapsed();
    match expect {
        "ok" => {
            checked.expect("credentials found");
            // Signed calls with them succeed: a presigned upload, then a read of it.
            store.ping().await.expect("HeadBucket signed with the chain's credentials");
            let org = format!("creds-{}", std::process::id());
            let upload = store.presign_upload(&org, "image/png").await.unwrap();
            let body = b"chain credentials".to_vec();
            assert_eq!(curl_put(&upload.url, &body), 200);
            let reference = S3Ref::parse(&upload.uri).unwrap();
            assert_eq!(store.read_for_org(&org, &reference).await.unwrap(), body);
        }
        "rejected" => {
            checked.expect("credentials found");
            // The keys were found and used: the server refuses their signature (HeadBucket
            // carries no error code, so this is "access denied"), which is Unavailable.
            let ping = store.ping().await;
            assert!(matches!(&ping, Err(ObjectError::Unavailable(_))), "{ping:?}");
        }
        "none" => {
            let message = checked.expect_err("no credentials anywhere").to_string();
            assert!(message.contains("no S3 credentials found"), "{message}");
        }
        "bounded" => {
            // Whatever IMDS does here (absent, unroutable or present), start-up is not held long.
            eprintln!("IMDS-enabled credential check: {checked:?} in {elapsed:?}");
        }
        other => panic!("unknown expectation {other}"),
    }
    assert!(elapsed < TIMEOUT + Duration::from_millis(500), "credential check took {elapsed:?}");
}

fn curl_put(url: &str, body: &[u8]) -> u16 {
    let path = std::env::temp_dir().join(format!("idverify-creds-{}.bin", std::process::id()));
    std::fs::File::create(&path).and_then(|mut f| f.write_all(body)).expect("write temp body");
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20", "--output", "/dev/null"])
        .args(["--write-out", "%{http_code}", "--request", "PUT", "--header", "Content-Type: image/png"])
        .arg("--data-binary")
        .arg(format!("@{}", path.display()))
        .arg(url)
        .output()
        .expect("run curl");
    let _ = std::fs::remove_file(&path);
    String::from_utf8_lossy(&output.stdout).trim().parse().expect("http status")
}

fn child_expectation() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

fn no_imds() -> (&'static str, String) {
    ("AWS_EC2_METADATA_DISABLED", "true".to_owned())
}

#[tokio::test]
async fn environment_credentials_are_used_without_static_keys() {
    if let Some(expect) = child_expectation() {
        return child_checks(&expect).await;
    }
    let Some(s3) = test_s3("environment_credentials_are_used_without_static_keys") else { return };
    let home = tempfile::tempdir().unwrap();
    let name = "environment_credentials_are_used_without_static_keys";
    let keys = |secret: &str| {
        vec![
            ("AWS_ACCESS_KEY_ID", s3.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", secret.to_owned()),
            no_imds(),
        ]
    };
    run_child(name, "ok", home.path(), Some(&s3), &keys(&s3.secret_access_key));
    run_child(name, "rejected", home.path(), Some(&s3), &keys("not-the-secret"));
}

#[tokio::test]
async fn profile_files_are_used_without_static_keys() {
    if let Some(expect) = child_expectation() {
        return child_checks(&expect).await;
    }
    let Some(s3) = test_s3("profile_files_are_used_without_static_keys") else { return };
    let home = tempfile::tempdir().unwrap();
    let name = "profile_files_are_used_without_static_keys";
    let keys = format!(
        "aws_access_key_id = {}\naws_secret_access_key = {}\n",
        s3.access_key_id, s3.secret_access_key
    );
    let missing = home.path().join("absent").display().to_string();

    // A shared credentials file, named profile.
    let credentials = home.path().join("credentials");
    std::fs::write(
        &credentials,
        format!("[default]\naws_access_key_id = AKIDWRONG\naws_secret_access_key = x\n\n[idverify]\n{keys}"),
    )
    .unwrap();
    run_child(
        name,
        "ok",
        home.path(),
        Some(&s3),
        &[
            ("AWS_SHARED_CREDENTIALS_FILE", credentials.display().to_string()),
            ("AWS_CONFIG_FILE", missing.clone()),
            ("AWS_PROFILE", "idverify".to_owned()),
            no_imds(),
        ],
    );

    // A config file (`[profile NAME]` sections), no credentials file.
    let config = home.path().join("config");
    std::fs::write(&config, format!("[profile uploads]\nregion = {}\n{keys}", s3.region)).unwrap();
    run_child(
        name,
        "ok",
        home.path(),
        Some(&s3),
        &[
            ("AWS_CONFIG_FILE", config.display().to_string()),
            ("AWS_SHARED_CREDENTIALS_FILE", missing),
            ("AWS_PROFILE", "uploads".to_owned()),
            no_imds(),
        ],
    );
}

#[tokio::test]
async fn no_credentials_anywhere_is_a_clear_error_and_imds_cannot_hold_start_up() {
    if let Some(expect) = child_expectation() {
        return child_checks(&expect).await;
    }
    // No server needed: nothing is sent without credentials.
    let home = tempfile::tempdir().unwrap();
    let name = "no_credentials_anywhere_is_a_clear_error_and_imds_cannot_hold_start_up";
    run_child(name, "none", home.path(), None, &[no_imds()]);
    run_child(name, "bounded", home.path(), None, &[]);
}
