//! Where the S3 credentials come from: the static keys of the configuration when it has them,
//! otherwise the AWS SDK's default credential chain, tried in this order:
//! 1. environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`);
//! 2. profile files: `~/.aws/credentials` and `~/.aws/config` (or `AWS_SHARED_CREDENTIALS_FILE`,
//!    `AWS_CONFIG_FILE`), profile `AWS_PROFILE` or `default`;
//! 3. web identity (EKS IAM roles for service accounts): `AWS_WEB_IDENTITY_TOKEN_FILE` +
//!    `AWS_ROLE_ARN`, exchanged with STS;
//! 4. ECS task role: `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` / `_FULL_URI`;
//! 5. EC2 instance profile, from the instance metadata service (IMDS; off with
//!    `AWS_EC2_METADATA_DISABLED=true`).
//!
//! Temporary credentials are refreshed by the SDK before they expire. All HTTP goes through the
//! client's own rustls (ring) connector.

use std::time::Duration;

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::imds;
use aws_config::provider_config::ProviderConfig;
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_s3::config::{
    Credentials, ProvideCredentials, Region, SharedCredentialsProvider, SharedHttpClient,
};
use aws_sdk_s3::error::DisplayErrorContext;

use crate::{ObjectError, ObjectStore, ObjectStoreConfig};

/// IMDS answers on a link-local address within milliseconds where it exists; elsewhere (a laptop,
/// another cloud) each attempt waits for the connect timeout, so keep both small.
const IMDS_TIMEOUT: Duration = Duration::from_secs(1);
const IMDS_ATTEMPTS: u32 = 2;

/// Static keys when configured (validation guarantees both or neither), otherwise the default chain.
/// Makes no network call: the chain resolves on first use.
pub(crate) async fn provider(cfg: &ObjectStoreConfig, http: SharedHttpClient) -> SharedCredentialsProvider {
    if !cfg.access_key_id.is_empty() {
        let keys =
            Credentials::new(&cfg.access_key_id, &cfg.secret_access_key, None, None, "idverify-config");
        return SharedCredentialsProvider::new(keys);
    }
    let region = Region::new(cfg.region.clone());
    let conf = ProviderConfig::default().with_http_client(http).with_region(Some(region.clone()));
    let imds = imds::Client::builder()
        .configure(&conf)
        .connect_timeout(IMDS_TIMEOUT)
        .read_timeout(IMDS_TIMEOUT)
        .max_attempts(IMDS_ATTEMPTS)
        .build();
    let chain =
        DefaultCredentialsChain::builder().region(region).imds_client(imds).configure(conf).build().await;
    SharedCredentialsProvider::new(chain)
}

impl ObjectStore {
    /// Resolves the credentials once, within the store's timeout (a start-up check; S3 calls
    /// resolve them by themselves). [`ObjectError::Config`] when no source has any,
    /// [`ObjectError::Unavailable`] when a source failed or did not answer in time.
    pub async fn check_credentials(&self) -> Result<(), ObjectError> {
        match tokio::time::timeout(self.timeout, self.credentials.provide_credentials()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(CredentialsError::CredentialsNotLoaded(_))) => Err(ObjectError::Config(
                "no S3 credentials found: set s3_access_key_id and s3_secret_access_key, or give the \
                 process AWS credentials (environment, profile file, web identity, ECS task role or \
                 instance profile)"
                    .to_owned(),
            )),
            Ok(Err(e)) => {
                Err(ObjectError::Unavailable(format!("S3 credentials: {}", DisplayErrorContext(&e))))
            }
            Err(_) => Err(ObjectError::Unavailable(format!(
                "S3 credentials: no answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }
}
