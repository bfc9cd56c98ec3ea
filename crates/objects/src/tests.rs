use super::*;

const ORG: &str = "org_123";

fn config() -> ObjectStoreConfig {
    ObjectStoreConfig {
        endpoint: Some("http://127.0.0.1:9".to_owned()),
        region: "us-east-1".to_owned(),
        bucket: "idverify-uploads".to_owned(),
        access_key_id: "AKIDFAKE".to_owned(),
        secret_access_key: "fake-secret".to_owned(),
        force_path_style: true,
        presign_ttl: Duration::from_secs(900),
        max_object_bytes: 15_000_000,
        delete_after_read: false,
        timeout: Duration::from_secs(5),
    }
}

#[test]
fn org_prefix_is_exact() {
    assert_eq!(org_prefix("org_123"), "orgs/org_123/uploads/");
}

#[test]
fn parse_accepts_well_formed_references() {
    assert_eq!(
        S3Ref::parse("s3://idverify-uploads/orgs/org_123/uploads/abc"),
        Some(S3Ref { bucket: "idverify-uploads".to_owned(), key: "orgs/org_123/uploads/abc".to_owned() })
    );
    let r = S3Ref::parse("s3://my.bucket-1/k").unwrap();
    assert_eq!((r.bucket.as_str(), r.key.as_str()), ("my.bucket-1", "k"));
    assert_eq!(r.to_string(), "s3://my.bucket-1/k");
}

#[test]
fn parse_rejects_anything_else() {
    for input in [
        "",
        "s3://",
        "s3://bucket",
        "s3://bucket/",
        "S3://bucket/key",
        "s3:/bucket/key",
        "https://bucket.s3.amazonaws.com/key",
        "s3://Bucket/key",
        "s3://b/key",
        "s3://-bucket/key",
        "s3://bucket-/key",
        "s3://buc..ket/key",
        "s3://bu_cket/key",
        "s3://user@bucket/key",
        "s3://bucket:9000/key",
        " s3://bucket/key",
        "s3://bucket/key with space",
        "s3://bucket/key\n",
        "s3://bucket/ke\0y",
        "/orgs/org_123/uploads/abc",
    ] {
        assert_eq!(S3Ref::parse(input), None, "{input:?} must not parse");
    }
    let long_key = format!("s3://bucket/{}", "a".repeat(MAX_KEY_LEN + 1));
    assert_eq!(S3Ref::parse(&long_key), None);
}

#[test]
fn own_keys_are_allowed() {
    assert!(key_allowed_for_org(ORG, "orgs/org_123/uploads/0b1c2d3e-aaaa-4bbb-8ccc-123456789abc"));
    assert!(key_allowed_for_org(ORG, "orgs/org_123/uploads/batch-1/front.jpg"));
    assert!(key_allowed_for_org(ORG, "orgs/org_123/uploads/.hidden"));
}

#[test]
fn path_tricks_and_foreign_keys_are_refused() {
    for key in [
        "orgs/org_123/uploads/",
        "orgs/org_123/uploads",
        "orgs/org_123/uploadsX/abc",
        "orgs/org_1234/uploads/abc",
        "orgs/org_12/uploads/abc",
        "orgs/other/uploads/abc",
        "/orgs/org_123/uploads/abc",
        "orgs//org_123/uploads/abc",
        "orgs/org_123/uploads//abc",
        "orgs/org_123/uploads/abc/",
        "orgs/org_123/uploads/../../other/uploads/abc",
        "orgs/org_123/uploads/a/../b",
        "orgs/org_123/uploads/./abc",
        "orgs/org_123/uploads/..",
        "orgs/org_123/uploads/%2e%2e/abc",
        "orgs/org_123/uploads/%2E%2E%2Fother",
        "orgs/org_123/uploads/a%2Fb",
        "orgs/org_123/uploads/..\\..\\other",
        "orgs/org_123/uploads/a\\b",
        "orgs\\org_123\\uploads\\abc",
        "orgs/org_123/uploads/a?b",
        "orgs/org_123/uploads/a#b",
        "orgs/org_123/uploads/caf\u{e9}",
        "ORGS/org_123/uploads/abc",
        "other-bucket/orgs/org_123/uploads/abc",
    ] {
        assert!(!key_allowed_for_org(ORG, key), "{key:?} must be refused");
    }
    let long = format!("orgs/org_123/uploads/{}", "a".repeat(MAX_KEY_LEN));
    assert!(!key_allowed_for_org(ORG, &long));
}

#[test]
fn invalid_org_ids_own_nothing() {
    for org in ["", "..", "a/b", "a\\b", "org 1", "org%2f", "*", &"a".repeat(MAX_ORG_ID_LEN + 1)] {
        assert!(!is_valid_org_id(org), "{org:?}");
        let key = format!("{}abc", org_prefix(org));
        assert!(!key_allowed_for_org(org, &key), "{org:?}");
    }
    // An empty org id must not unlock every org's keys via the shorter "orgs//uploads/" prefix.
    assert!(!key_allowed_for_org("", "orgs//uploads/abc"));
    assert!(is_valid_org_id("0b1c2d3e-aaaa-4bbb-8ccc-123456789abc"));
}

#[test]
fn content_types_are_canonicalized_or_refused() {
    assert_eq!(canonical_content_type("image/jpeg"), Some("image/jpeg"));
    assert_eq!(canonical_content_type(" IMAGE/PNG "), Some("image/png"));
    assert_eq!(canonical_content_type("image/webp"), Some("image/webp"));
    for refused in ["", "image/gif", "image/jpg", "image/jpeg; charset=utf-8", "text/html", "image/*"] {
        assert_eq!(canonical_content_type(refused), None, "{refused:?}");
    }
}

#[test]
fn config_is_validated() {
    type Mutation = fn(&mut ObjectStoreConfig);
    let cases: [(&str, Mutation); 9] = [
        ("ftp endpoint", |c| c.endpoint = Some("ftp://x".to_owned())),
        ("empty endpoint host", |c| c.endpoint = Some("http://".to_owned())),
        ("empty region", |c| c.region = " ".to_owned()),
        ("bad bucket", |c| c.bucket = "Bad_Bucket".to_owned()),
        ("key id without secret", |c| c.secret_access_key.clear()),
        ("secret without key id", |c| c.access_key_id.clear()),
        ("ttl too long", |c| c.presign_ttl = Duration::from_secs(8 * 24 * 3600)),
        ("zero max bytes", |c| c.max_object_bytes = 0),
        ("tiny timeout", |c| c.timeout = Duration::from_millis(1)),
    ];
    for (name, mutate) in cases {
        let mut cfg = config();
        mutate(&mut cfg);
        assert!(matches!(validate_config(&cfg), Err(ObjectError::Config(_))), "{name}");
    }
    assert!(validate_config(&config()).is_ok());
    let mut aws = config();
    aws.endpoint = None;
    assert!(validate_config(&aws).is_ok());
    // Neither key: the default credential chain.
    let mut chain = config();
    chain.access_key_id.clear();
    chain.secret_access_key.clear();
    assert!(validate_config(&chain).is_ok());
}

#[test]
fn config_debug_hides_the_secret() {
    let shown = format!("{:?}", config());
    assert!(!shown.contains("fake-secret"), "{shown}");
    assert!(shown.contains("<redacted>"));
}

#[test]
fn public_types_are_send_sync() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<ObjectStore>();
    assert_send_sync::<ObjectStoreConfig>();
    assert_send_sync::<S3Ref>();
    assert_send_sync::<PresignedUpload>();
}

#[tokio::test]
async fn presign_is_offline_and_scoped_to_the_org() {
    // Presigning is pure computation: the endpoint (discard port) is never contacted.
    let store = ObjectStore::new(config()).await.unwrap();
    assert_eq!(
        (store.bucket(), store.max_object_bytes(), store.presign_ttl()),
        ("idverify-uploads", 15_000_000, Duration::from_secs(900))
    );
    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let upload = store.presign_upload(ORG, "IMAGE/JPEG").await.unwrap();
    assert_eq!(upload.method, "PUT");
    assert!(upload.key.starts_with("orgs/org_123/uploads/"), "{}", upload.key);
    let id = upload.key.strip_prefix("orgs/org_123/uploads/").unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    assert!(key_allowed_for_org(ORG, &upload.key));
    assert_eq!(upload.uri, format!("s3://idverify-uploads/{}", upload.key));
    assert_eq!(S3Ref::parse(&upload.uri).map(|r| r.key), Some(upload.key.clone()));
    assert!(upload.url.starts_with(&format!("http://127.0.0.1:9/idverify-uploads/{}?", upload.key)));
    assert!(upload.url.contains("X-Amz-Expires=900"), "{}", upload.url);
    assert!(upload.url.to_ascii_lowercase().contains("content-type"), "content type must be signed");
    assert_eq!(upload.headers, vec![("Content-Type".to_owned(), "image/jpeg".to_owned())]);
    assert!((before + 900..=before + 901).contains(&upload.expires_at_unix));

    let other = store.presign_upload(ORG, "image/png").await.unwrap();
    assert_ne!(other.key, upload.key, "every upload gets a fresh key");
}

#[tokio::test]
async fn presign_refuses_bad_input() {
    let store = ObjectStore::new(config()).await.unwrap();
    assert!(matches!(
        store.presign_upload(ORG, "image/gif").await,
        Err(ObjectError::InvalidContentType(ct)) if ct == "image/gif"
    ));
    for org in ["", "../other", "a/b", "org 1"] {
        assert!(
            matches!(store.presign_upload(org, "image/png").await, Err(ObjectError::Config(_))),
            "{org:?}"
        );
    }
}

#[tokio::test]
async fn read_refuses_foreign_references_without_any_request() {
    // The endpoint is unreachable, so anything but an immediate Forbidden would be Unavailable.
    let store = ObjectStore::new(config()).await.unwrap();
    let refs = [
        S3Ref { bucket: "other-bucket".to_owned(), key: "orgs/org_123/uploads/abc".to_owned() },
        S3Ref { bucket: "idverify-uploads".to_owned(), key: "orgs/other/uploads/abc".to_owned() },
        S3Ref {
            bucket: "idverify-uploads".to_owned(),
            key: "orgs/org_123/uploads/../../other/uploads/x".to_owned(),
        },
        S3Ref { bucket: "idverify-uploads".to_owned(), key: "orgs/org_123/uploads/%2e%2e/x".to_owned() },
        S3Ref { bucket: "idverify-uploads".to_owned(), key: "/orgs/org_123/uploads/abc".to_owned() },
    ];
    for reference in &refs {
        assert!(
            matches!(store.read_for_org(ORG, reference).await, Err(ObjectError::Forbidden)),
            "{reference}"
        );
    }
}
