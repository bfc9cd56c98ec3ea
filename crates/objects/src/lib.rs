//! Org-scoped image objects in an S3-compatible bucket.
//!
//! Callers get a presigned PUT URL for a fresh key under their organization's prefix
//! (`orgs/<org_id>/uploads/<uuid>`), upload the image themselves, then reference it as
//! `s3://<bucket>/<key>`. [`ObjectStore::read_for_org`] only reads objects under the caller's own
//! prefix in the configured bucket, answers [`ObjectError::Forbidden`] for everything else
//! (including objects that do not exist, so existence is never revealed), and never downloads more
//! than `max_object_bytes + 1` bytes.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Region, RequestChecksumCalculation};
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

mod credentials;

/// Content types a client may announce (and is then bound to) when asking for an upload URL.
pub const ALLOWED_CONTENT_TYPES: [&str; 3] = ["image/jpeg", "image/png", "image/webp"];

/// Longest accepted object key; S3 itself allows 1024 bytes.
const MAX_KEY_LEN: usize = 1024;
/// Longest accepted organization id (fits UUIDs, ULIDs and slugs).
const MAX_ORG_ID_LEN: usize = 64;
/// S3 refuses presigned URLs valid for longer than 7 days.
const MAX_PRESIGN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Attempts per S3 call (first try + retries) on 5xx, throttling, timeouts and connection errors.
const MAX_ATTEMPTS: u32 = 3;
/// Attempts to stream a GET body, which the SDK does not retry by itself.
const MAX_BODY_ATTEMPTS: u32 = 2;

/// Messages never contain keys, org ids or object contents.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// Not the caller's object, not a valid reference, or no such object: deliberately indistinct
    /// (HTTP 403).
    #[error("access to this object is forbidden")]
    Forbidden,
    /// Larger than `max_object_bytes` (HTTP 413).
    #[error("object is too large ({size} bytes)")]
    TooLarge { size: u64 },
    /// S3 unreachable, timing out, failing with 5xx after retries, or refusing our credentials
    /// (HTTP 503).
    #[error("object store unavailable: {0}")]
    Unavailable(String),
    /// Invalid configuration, or an organization id that cannot form a key (HTTP 500).
    #[error("object store configuration: {0}")]
    Config(String),
    /// Presign asked for a content type other than image/jpeg, image/png, image/webp (HTTP 400).
    #[error("content type {0:?} is not allowed (allowed: image/jpeg, image/png, image/webp)")]
    InvalidContentType(String),
}

#[derive(Clone)]
pub struct ObjectStoreConfig {
    /// Custom endpoint such as `http://127.0.0.1:8333`; `None` = AWS S3.
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    /// Static keys; both empty = the AWS default credential chain (see the `credentials` module).
    pub access_key_id: String,
    pub secret_access_key: String,
    /// `http://host/bucket/key` instead of `http://bucket.host/key` (needed by most self-hosted servers).
    pub force_path_style: bool,
    /// Validity of presigned upload URLs (1 s to 7 days).
    pub presign_ttl: Duration,
    pub max_object_bytes: u64,
    /// Delete an object once it has been read successfully, so images are used once and not kept.
    pub delete_after_read: bool,
    /// Upper bound for each S3 call, retries and backoff included (one attempt gets half of it).
    /// A read makes two calls plus the body transfer and is bounded by twice this.
    pub timeout: Duration,
}

impl fmt::Debug for ObjectStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStoreConfig")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("force_path_style", &self.force_path_style)
            .field("presign_ttl", &self.presign_ttl)
            .field("max_object_bytes", &self.max_object_bytes)
            .field("delete_after_read", &self.delete_after_read)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedUpload {
    pub url: String,
    /// Always `"PUT"`.
    pub method: &'static str,
    /// Headers the upload must carry exactly (the signed `Content-Type`).
    pub headers: Vec<(String, String)>,
    pub key: String,
    /// `s3://<bucket>/<key>`, to pass in a verify request.
    pub uri: String,
    pub expires_at_unix: u64,
}

/// Parsed `s3://bucket/key` reference; parse is pure and strict (returns None for anything else).
///
/// Parsing only checks the shape (scheme, valid bucket name, a non-empty printable key); whether the
/// key is acceptable for a caller is decided by [`key_allowed_for_org`], so path tricks parse but are
/// then refused as `Forbidden`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Ref {
    pub bucket: String,
    pub key: String,
}

impl S3Ref {
    pub fn parse(s: &str) -> Option<S3Ref> {
        let rest = s.strip_prefix("s3://")?;
        let (bucket, key) = rest.split_once('/')?;
        if !is_valid_bucket_name(bucket) || key.is_empty() || key.len() > MAX_KEY_LEN {
            return None;
        }
        // Whitespace and control characters never belong in a reference we hand out.
        if key.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return None;
        }
        Some(S3Ref { bucket: bucket.to_owned(), key: key.to_owned() })
    }
}

impl fmt::Display for S3Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// Prefix under which all of an organization's uploads live: `orgs/<org_id>/uploads/`.
pub fn org_prefix(org_id: &str) -> String {
    format!("orgs/{org_id}/uploads/")
}

/// Organization ids are embedded in keys, so they are restricted to a path-safe alphabet.
pub fn is_valid_org_id(org_id: &str) -> bool {
    !org_id.is_empty()
        && org_id.len() <= MAX_ORG_ID_LEN
        && org_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `key` may be read by `org_id`: strictly below the org's prefix, made only of
/// `[A-Za-z0-9._-]` segments separated by single `/`, no `.`/`..` segments. This refuses
/// percent-encoding, backslashes, `//`, absolute keys and traversal without trying to normalize them.
pub fn key_allowed_for_org(org_id: &str, key: &str) -> bool {
    if !is_valid_org_id(org_id) || key.len() > MAX_KEY_LEN {
        return false;
    }
    let Some(rest) = key.strip_prefix(&org_prefix(org_id)) else {
        return false;
    };
    !rest.is_empty()
        && rest.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        })
}

/// Canonical (lowercase) content type if it is one of [`ALLOWED_CONTENT_TYPES`].
fn canonical_content_type(content_type: &str) -> Option<&'static str> {
    let trimmed = content_type.trim();
    ALLOWED_CONTENT_TYPES.iter().copied().find(|allowed| allowed.eq_ignore_ascii_case(trimmed))
}

/// S3 bucket naming rules (3-63 chars, lowercase letters, digits, `.` and `-`, alphanumeric at both
/// ends, no `..`), which also keeps bucket names free of anything URL-significant.
fn is_valid_bucket_name(bucket: &str) -> bool {
    let bytes = bucket.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-'))
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && !bucket.contains("..")
}

/// How an S3 call failed, reduced to what callers may act on.
#[derive(Debug)]
enum CallFailure {
    NotFound,
    Denied,
    Unavailable(String),
}

fn classify<E>(operation: &str, err: &SdkError<E, HttpResponse>) -> CallFailure
where
    E: aws_sdk_s3::error::ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("");
            match (status, code) {
                // Our own credentials are wrong: an operator problem, not the caller's.
                (_, "SignatureDoesNotMatch" | "InvalidAccessKeyId" | "InvalidToken" | "ExpiredToken") => {
                    CallFailure::Unavailable(format!("{operation}: credentials rejected ({code})"))
                }
                (404, _) | (_, "NoSuchKey" | "NotFound" | "NoSuchBucket") => CallFailure::NotFound,
                (403, _) | (_, "AccessDenied") => CallFailure::Denied,
                _ => CallFailure::Unavailable(format!("{operation}: S3 error status {status} {code}")),
            }
        }
        SdkError::TimeoutError(_) => CallFailure::Unavailable(format!("{operation}: timed out")),
        SdkError::DispatchFailure(dispatch) => {
            let kind = if dispatch.is_timeout() {
                "timed out"
            } else if dispatch.is_io() {
                "connection failed"
            } else {
                "request failed"
            };
            CallFailure::Unavailable(format!("{operation}: {kind}"))
        }
        SdkError::ResponseError(_) => CallFailure::Unavailable(format!("{operation}: invalid response")),
        SdkError::ConstructionFailure(_) => {
            CallFailure::Unavailable(format!("{operation}: could not build request"))
        }
        _ => CallFailure::Unavailable(format!("{operation}: failed")),
    }
}

#[derive(Clone)]
pub struct ObjectStore {
    client: Client,
    // Shared, not owned: `ObjectStore` is held by value in the server's state, so it stays small.
    /// The client's credentials, kept for the start-up check (the client does not give them back).
    credentials: std::sync::Arc<aws_sdk_s3::config::SharedCredentialsProvider>,
    bucket: std::sync::Arc<str>,
    presign_ttl: Duration,
    max_object_bytes: u64,
    delete_after_read: bool,
    timeout: Duration,
}

impl fmt::Debug for ObjectStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStore")
            .field("bucket", &self.bucket)
            .field("max_object_bytes", &self.max_object_bytes)
            .field("delete_after_read", &self.delete_after_read)
            .finish_non_exhaustive()
    }
}

impl ObjectStore {
    /// Builds the client; makes no network call (use [`ObjectStore::ping`] to check reachability).
    pub async fn new(cfg: ObjectStoreConfig) -> Result<ObjectStore, ObjectError> {
        validate_config(&cfg)?;

        let https = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        // The whole budget covers all attempts; a single attempt gets half, so one retry always fits.
        let timeouts = TimeoutConfig::builder()
            .connect_timeout((cfg.timeout / 2).min(Duration::from_secs(3)))
            .operation_attempt_timeout(cfg.timeout / 2)
            .operation_timeout(cfg.timeout)
            .build();
        let retries = RetryConfig::standard()
            .with_max_attempts(MAX_ATTEMPTS)
            .with_initial_backoff(Duration::from_millis(100))
            .with_max_backoff(Duration::from_secs(1));
        let credentials = credentials::provider(&cfg, https.clone()).await;
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(cfg.region.clone()))
            .credentials_provider(credentials.clone())
            .force_path_style(cfg.force_path_style)
            .http_client(https)
            .timeout_config(timeouts)
            .retry_config(retries)
            // Presigned URLs must never demand checksum headers that a plain curl upload cannot send.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired);
        if let Some(endpoint) = &cfg.endpoint {
            builder = builder.endpoint_url(endpoint.clone());
        }
        Ok(ObjectStore {
            client: Client::from_conf(builder.build()),
            credentials: std::sync::Arc::new(credentials),
            bucket: cfg.bucket.into(),
            presign_ttl: cfg.presign_ttl,
            max_object_bytes: cfg.max_object_bytes,
            delete_after_read: cfg.delete_after_read,
            timeout: cfg.timeout,
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn max_object_bytes(&self) -> u64 {
        self.max_object_bytes
    }

    pub fn presign_ttl(&self) -> Duration {
        self.presign_ttl
    }

    /// Creates the bucket if it does not exist yet.
    pub async fn ensure_bucket(&self) -> Result<(), ObjectError> {
        match self.client.head_bucket().bucket(&*self.bucket).send().await {
            Ok(_) => return Ok(()),
            Err(err) => match classify("HeadBucket", &err) {
                CallFailure::NotFound => {}
                CallFailure::Denied => {
                    return Err(ObjectError::Unavailable("HeadBucket: access denied".to_owned()));
                }
                CallFailure::Unavailable(msg) => return Err(ObjectError::Unavailable(msg)),
            },
        }
        let mut create = self.client.create_bucket().bucket(&*self.bucket);
        let region = self.client.config().region().map(|r| r.as_ref().to_owned()).unwrap_or_default();
        // us-east-1 is the one region that must not be named as a location constraint.
        if region != "us-east-1" && !region.is_empty() {
            create = create.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region.as_str()))
                    .build(),
            );
        }
        match create.send().await {
            Ok(_) => Ok(()),
            Err(err) => {
                let code = err
                    .as_service_error()
                    .and_then(|e| aws_sdk_s3::error::ProvideErrorMetadata::code(e).map(str::to_owned));
                // Someone (another instance) created it in between: fine.
                if code.as_deref() == Some("BucketAlreadyOwnedByYou") {
                    return Ok(());
                }
                match classify("CreateBucket", &err) {
                    CallFailure::Unavailable(msg) => Err(ObjectError::Unavailable(msg)),
                    _ => Err(ObjectError::Unavailable("CreateBucket: refused".to_owned())),
                }
            }
        }
    }

    /// A presigned PUT URL for a new key under the org's prefix, bound to `content_type`.
    pub async fn presign_upload(
        &self,
        org_id: &str,
        content_type: &str,
    ) -> Result<PresignedUpload, ObjectError> {
        if !is_valid_org_id(org_id) {
            return Err(ObjectError::Config("invalid organization id".to_owned()));
        }
        let content_type = canonical_content_type(content_type)
            .ok_or_else(|| ObjectError::InvalidContentType(content_type.chars().take(100).collect()))?;
        let key = format!("{}{}", org_prefix(org_id), uuid::Uuid::new_v4());
        let start = SystemTime::now();
        let presigning = PresigningConfig::builder()
            .start_time(start)
            .expires_in(self.presign_ttl)
            .build()
            .map_err(|e| ObjectError::Config(format!("presign ttl: {e}")))?;
        let presigned = self
            .client
            .put_object()
            .bucket(&*self.bucket)
            .key(&key)
            .content_type(content_type)
            .presigned(presigning)
            .await
            .map_err(|err| match classify("PresignPutObject", &err) {
                CallFailure::Unavailable(msg) => ObjectError::Unavailable(msg),
                other => ObjectError::Unavailable(format!("PresignPutObject: {other:?}")),
            })?;
        let mut headers: Vec<(String, String)> = presigned
            .headers()
            .map(|(name, value)| {
                // Canonical spelling for API clients; header names are case-insensitive on the wire.
                let name = if name.eq_ignore_ascii_case("content-type") { "Content-Type" } else { name };
                (name.to_owned(), value.to_owned())
            })
            .collect();
        if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
            headers.push(("Content-Type".to_owned(), content_type.to_owned()));
        }
        let expires_at_unix =
            (start + self.presign_ttl).duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Ok(PresignedUpload {
            url: presigned.uri().to_owned(),
            method: "PUT",
            headers,
            uri: format!("s3://{}/{}", self.bucket, key),
            key,
            expires_at_unix,
        })
    }

    /// Reads an object the org owns. `Forbidden` for foreign, malformed or missing references alike;
    /// `TooLarge` without downloading more than `max_object_bytes + 1` bytes.
    pub async fn read_for_org(&self, org_id: &str, reference: &S3Ref) -> Result<Vec<u8>, ObjectError> {
        if *reference.bucket != *self.bucket || !key_allowed_for_org(org_id, &reference.key) {
            return Err(ObjectError::Forbidden);
        }
        let key = reference.key.as_str();
        // Hard bound on top of the SDK's per-call timeouts: the body stream has no SDK timeout.
        let budget = self.timeout.saturating_mul(2);
        let bytes = tokio::time::timeout(budget, self.read_bounded(key))
            .await
            .map_err(|_| ObjectError::Unavailable("read timed out".to_owned()))??;
        if self.delete_after_read {
            match tokio::time::timeout(
                self.timeout,
                self.client.delete_object().bucket(&*self.bucket).key(key).send(),
            )
            .await
            {
                Ok(Ok(_)) => {}
                // The read succeeded, so a leftover object is only logged (without the key: it names
                // the org) instead of failing the verification.
                Ok(Err(err)) => {
                    tracing::warn!(failure = ?classify("DeleteObject", &err), "could not delete object after read")
                }
                Err(_) => tracing::warn!("deleting object after read timed out"),
            }
        }
        Ok(bytes)
    }

    async fn read_bounded(&self, key: &str) -> Result<Vec<u8>, ObjectError> {
        let head = self
            .client
            .head_object()
            .bucket(&*self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|err| self.read_failure("HeadObject", &err))?;
        if let Some(size) = head.content_length().and_then(|len| u64::try_from(len).ok())
            && size > self.max_object_bytes
        {
            return Err(ObjectError::TooLarge { size });
        }

        let mut last_error = String::new();
        for _ in 0..MAX_BODY_ATTEMPTS {
            let response = self
                .client
                .get_object()
                .bucket(&*self.bucket)
                .key(key)
                .send()
                .await
                .map_err(|err| self.read_failure("GetObject", &err))?;
            let announced = response.content_length().and_then(|len| u64::try_from(len).ok());
            // The object may have been replaced since the HEAD.
            if let Some(size) = announced
                && size > self.max_object_bytes
            {
                return Err(ObjectError::TooLarge { size });
            }
            let capacity = announced.unwrap_or(0).min(self.max_object_bytes) as usize;
            let mut body = response.body;
            let mut data = Vec::with_capacity(capacity);
            let mut stream_failed = false;
            while let Some(chunk) = body.next().await {
                match chunk {
                    Ok(chunk) => {
                        data.extend_from_slice(&chunk);
                        if data.len() as u64 > self.max_object_bytes {
                            // Stop here: dropping the body closes the connection instead of draining it.
                            return Err(ObjectError::TooLarge {
                                size: announced.unwrap_or(data.len() as u64),
                            });
                        }
                    }
                    Err(_) => {
                        last_error = "GetObject: body stream interrupted".to_owned();
                        stream_failed = true;
                        break;
                    }
                }
            }
            if !stream_failed {
                return Ok(data);
            }
        }
        Err(ObjectError::Unavailable(last_error))
    }

    fn read_failure<E>(&self, operation: &str, err: &SdkError<E, HttpResponse>) -> ObjectError
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata,
    {
        match classify(operation, err) {
            CallFailure::NotFound => ObjectError::Forbidden,
            CallFailure::Denied => {
                // Our own credentials were refused: the caller still only learns "forbidden".
                tracing::warn!(operation, "object store denied access with the configured credentials");
                ObjectError::Forbidden
            }
            CallFailure::Unavailable(msg) => ObjectError::Unavailable(msg),
        }
    }

    /// Checks that the store answers and the bucket is accessible (for readiness probes).
    pub async fn ping(&self) -> Result<(), ObjectError> {
        match self.client.head_bucket().bucket(&*self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(err) => Err(match classify("HeadBucket", &err) {
                CallFailure::NotFound => ObjectError::Unavailable("HeadBucket: bucket not found".to_owned()),
                CallFailure::Denied => ObjectError::Unavailable("HeadBucket: access denied".to_owned()),
                CallFailure::Unavailable(msg) => ObjectError::Unavailable(msg),
            }),
        }
    }
}

fn validate_config(cfg: &ObjectStoreConfig) -> Result<(), ObjectError> {
    let fail = |msg: &str| Err(ObjectError::Config(msg.to_owned()));
    if let Some(endpoint) = &cfg.endpoint {
        let rest = endpoint.strip_prefix("http://").or_else(|| endpoint.strip_prefix("https://"));
        match rest {
            Some(host) if !host.is_empty() && !host.chars().any(|c| c.is_whitespace() || c.is_control()) => {}
            _ => return fail("endpoint must be an http:// or https:// URL"),
        }
    }
    if cfg.region.trim().is_empty() {
        return fail("region is empty");
    }
    if !is_valid_bucket_name(&cfg.bucket) {
        return fail("bucket name is not a valid S3 bucket name");
    }
    if cfg.access_key_id.is_empty() != cfg.secret_access_key.is_empty() {
        return fail("set both access key id and secret access key, or neither (default credential chain)");
    }
    if cfg.presign_ttl < Duration::from_secs(1) || cfg.presign_ttl > MAX_PRESIGN_TTL {
        return fail("presign ttl must be between 1 second and 7 days");
    }
    if cfg.max_object_bytes == 0 {
        return fail("max object bytes must be positive");
    }
    if cfg.timeout < Duration::from_millis(100) {
        return fail("timeout must be at least 100 ms");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
