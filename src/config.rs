//! One typed configuration: embedded defaults < config file < `IDVERIFY_*` environment < flags.
//!
//! Keys are flat so that every key maps to exactly one environment variable. Secrets are wrapped
//! in [`Secret`] so they never appear in `Debug` output or logs.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");
pub const ENV_PREFIX: &str = "IDVERIFY_";

/// A string that never prints.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() { f.write_str("\"\"") } else { f.write_str("[redacted]") }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    pub models_dir: PathBuf,
    pub database_url: Secret,
    /// A file holding `database_url` (Kubernetes / Docker secrets); read at load time.
    pub database_url_file: PathBuf,
    pub database_max_connections: u32,
    pub database_connect_timeout_secs: u64,
    pub log_level: String,
    pub request_timeout_secs: u64,
    pub header_read_timeout_secs: u64,
    pub shutdown_grace_secs: u64,
    /// On SIGTERM, /readyz answers 503 this long while requests are still served.
    pub shutdown_drain_delay_secs: u64,
    /// Whether a database (or S3) outage turns /readyz 503 (by default it is only reported).
    pub readyz_requires_database: bool,
    /// A separate HOST:PORT for /metrics; empty = /metrics on the main listener.
    pub metrics_listen: String,
    pub reservation_sweep_margin_secs: u64,
    pub max_image_bytes: u64,
    pub max_image_pixels: u64,
    pub max_body_bytes: u64,
    pub engine_threads: usize,
    pub engine_sessions: usize,
    pub max_in_flight: usize,
    pub queue_wait_ms: u64,
    pub face_target_fmr: f64,
    /// `cascade` (SFace where dlib is unsure), `dlib` or `fused` (both on every pair).
    pub face_recognizers: idverify_face::Recognizers,
    pub min_age: u32,
    /// Compare a passport's printed fields with its MRZ too (`viz_mrz_consistent`).
    pub document_cross_check_passports: bool,
    pub price_verify: i64,
    pub price_document_scan: i64,
    pub price_face_detect: i64,
    pub price_face_compare: i64,
    pub price_uploads: i64,
    pub rate_limit_per_second: f64,
    pub rate_limit_burst: u32,
    pub s3_endpoint: String,
    pub s3_region: String,
    pub s3_bucket: String,
    pub s3_access_key_id: String,
    pub s3_secret_access_key: Secret,
    pub s3_access_key_id_file: PathBuf,
    pub s3_secret_access_key_file: PathBuf,
    pub s3_force_path_style: bool,
    pub s3_presign_ttl_secs: u64,
    pub s3_delete_after_read: bool,
    pub s3_timeout_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("config file {path} is not valid TOML: {reason}")]
    Parse { path: String, reason: String },
    #[error("config key `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

/// Values given on the command line; `None` leaves the lower layers in force.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub models_dir: Option<PathBuf>,
}

impl Config {
    /// Loads from the embedded defaults, an optional file, the process environment and flags.
    pub fn load(overrides: &Overrides) -> Result<Config, ConfigError> {
        Self::load_from(overrides, std::env::vars())
    }

    /// Same as [`Config::load`] with an explicit environment (for tests).
    pub fn load_from(
        overrides: &Overrides,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table = DEFAULT_TOML.parse().map_err(|e: toml::de::Error| {
            ConfigError::Parse { path: "<embedded>".into(), reason: e.to_string() }
        })?;

        let env: Vec<(String, String)> = env.into_iter().collect();
        let file = overrides
            .config_file
            .clone()
            .or_else(|| env.iter().find(|(k, _)| k == "IDVERIFY_CONFIG").map(|(_, v)| PathBuf::from(v)));
        if let Some(path) = file {
            merge_file(&mut table, &path)?;
        }
        for (name, value) in &env {
            let Some(key) = name.strip_prefix(ENV_PREFIX) else { continue };
            let key = key.to_ascii_lowercase();
            // Only keys this config has; other IDVERIFY_* variables belong to scripts and tests.
            if let Some(current) = table.get(&key) {
                let parsed = parse_like(current, value).map_err(|reason| ConfigError::Invalid {
                    key: format!("{name} (environment)"),
                    reason,
                })?;
                table.insert(key, parsed);
            }
        }
        let flags = [
            ("listen", overrides.listen.clone()),
            ("data_dir", overrides.data_dir.as_ref().map(|p| p.display().to_string())),
            ("models_dir", overrides.models_dir.as_ref().map(|p| p.display().to_string())),
        ];
        for (key, value) in flags {
            if let Some(v) = value {
                table.insert(key.to_string(), toml::Value::String(v));
            }
        }
        let mut config: Config = toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| {
            ConfigError::Invalid { key: "config".into(), reason: e.to_string() }
        })?;
        config.read_secret_files()?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid =
            |key: &str, reason: &str| ConfigError::Invalid { key: key.into(), reason: reason.into() };
        self.listen
            .parse::<SocketAddr>()
            .map_err(|_| invalid("listen", "must be HOST:PORT with an IP address, e.g. 127.0.0.1:8080"))?;
        if let Some(metrics) = self.metrics_addr() {
            let metrics = metrics.map_err(|_| {
                invalid(
                    "metrics_listen",
                    "must be HOST:PORT with an IP address, or empty for the main listener",
                )
            })?;
            if metrics.port() != 0 && metrics == self.listen_addr() {
                return Err(invalid("metrics_listen", "must differ from listen (or be empty)"));
            }
        }
        if self.header_read_timeout_secs == 0 {
            return Err(invalid("header_read_timeout_secs", "must be at least 1"));
        }
        if self.max_image_bytes == 0 || self.max_image_pixels == 0 {
            return Err(invalid("max_image_bytes", "image limits must be positive"));
        }
        if self.max_body_bytes < self.max_image_bytes {
            return Err(invalid("max_body_bytes", "must be at least max_image_bytes"));
        }
        if self.engine_threads == 0 || self.engine_sessions == 0 || self.max_in_flight == 0 {
            return Err(invalid(
                "engine_threads",
                "engine_threads, engine_sessions and max_in_flight must be >= 1",
            ));
        }
        if self.face_target_fmr.is_nan() || self.face_target_fmr <= 0.0 || self.face_target_fmr >= 1.0 {
            return Err(invalid("face_target_fmr", "must be between 0 and 1, e.g. 0.001"));
        }
        // The shipped calibration's thresholds below this rate rest on too few impostor pairs.
        let calibration =
            idverify_face::Calibration::shipped().map_err(|e| invalid("face_target_fmr", &e.to_string()))?;
        calibration.check_target_fmr(self.face_target_fmr).map_err(|e| invalid("face_target_fmr", &e))?;
        if self.face_recognizers != idverify_face::Recognizers::Dlib && calibration.fusion.is_none() {
            return Err(invalid(
                "face_recognizers",
                "the shipped face calibration has no dlib + SFace fusion; use \"dlib\"",
            ));
        }
        for (key, price) in [
            ("price_verify", self.price_verify),
            ("price_document_scan", self.price_document_scan),
            ("price_face_detect", self.price_face_detect),
            ("price_face_compare", self.price_face_compare),
            ("price_uploads", self.price_uploads),
        ] {
            if price < 0 {
                return Err(invalid(key, "prices cannot be negative"));
            }
        }
        if self.rate_limit_per_second.is_nan()
            || self.rate_limit_per_second <= 0.0
            || self.rate_limit_burst == 0
        {
            return Err(invalid("rate_limit_per_second", "rate limit and burst must be positive"));
        }
        let url = self.database_url.expose();
        if !(url.is_empty() || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(invalid("database_url", "must be a postgres:// URL or empty for embedded SQLite"));
        }
        if self.database_max_connections == 0 || self.database_connect_timeout_secs == 0 {
            return Err(invalid(
                "database_max_connections",
                "database_max_connections and database_connect_timeout_secs must be >= 1",
            ));
        }
        // Neither key: the AWS default credential chain (environment, profile, roles).
        if self.s3_access_key_id.is_empty() != self.s3_secret_access_key.is_empty() {
            return Err(invalid(
                "s3_access_key_id",
                "set both s3_access_key_id and s3_secret_access_key, or neither to use the AWS default \
                 credential chain",
            ));
        }
        Ok(())
    }

    /// Replaces each secret that has a `*_file` key by that file's content (a trailing newline
    /// trimmed). Errors name the key and the path, never the content.
    fn read_secret_files(&mut self) -> Result<(), ConfigError> {
        fn read(key: &str, value_is_set: bool, path: &Path) -> Result<Option<String>, ConfigError> {
            if path.as_os_str().is_empty() {
                return Ok(None);
            }
            let invalid = |reason: String| ConfigError::Invalid { key: key.into(), reason };
            let value_key = key.trim_end_matches("_file");
            if value_is_set {
                return Err(invalid(format!("set either {value_key} or {key}, not both")));
            }
            let text = std::fs::read_to_string(path)
                .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
            let value = text.trim_end_matches(['\n', '\r']);
            if value.is_empty() {
                return Err(invalid(format!("{} is empty", path.display())));
            }
            Ok(Some(value.to_string()))
        }
        if let Some(url) = read("database_url_file", !self.database_url.is_empty(), &self.database_url_file)?
        {
            self.database_url = Secret::new(url);
        }
        let key_id_set = !self.s3_access_key_id.is_empty();
        if let Some(id) = read("s3_access_key_id_file", key_id_set, &self.s3_access_key_id_file)? {
            self.s3_access_key_id = id;
        }
        let secret_set = !self.s3_secret_access_key.is_empty();
        if let Some(secret) = read("s3_secret_access_key_file", secret_set, &self.s3_secret_access_key_file)?
        {
            self.s3_secret_access_key = Secret::new(secret);
        }
        Ok(())
    }

    /// Age past which no live request can still answer: its reservation is refunded by a sweep.
    pub fn reservation_expiry(&self) -> std::time::Duration {
        std::time::Duration::from_secs(
            self.request_timeout_secs + self.shutdown_grace_secs + self.reservation_sweep_margin_secs,
        )
    }

    pub fn listen_addr(&self) -> SocketAddr {
        // validate() guarantees this parses.
        self.listen.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080)))
    }

    /// The separate metrics listener, when `metrics_listen` is set (Err: not an address).
    pub fn metrics_addr(&self) -> Option<Result<SocketAddr, std::net::AddrParseError>> {
        Some(self.metrics_listen.trim()).filter(|s| !s.is_empty()).map(str::parse)
    }

    pub fn database_url(&self) -> Option<&str> {
        Some(self.database_url.expose()).filter(|s| !s.is_empty())
    }

    pub fn s3_enabled(&self) -> bool {
        !self.s3_bucket.is_empty()
    }
}

fn merge_file(table: &mut toml::Table, path: &Path) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Read { path: path.to_path_buf(), reason: e.to_string() })?;
    let file: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError::Parse {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    for (key, value) in file {
        if !table.contains_key(&key) {
            return Err(ConfigError::Invalid { key, reason: format!("unknown key in {}", path.display()) });
        }
        table.insert(key, value);
    }
    Ok(())
}

/// Parses an environment string into the TOML type of the key's default value.
fn parse_like(current: &toml::Value, raw: &str) -> Result<toml::Value, String> {
    let raw = raw.trim();
    Ok(match current {
        toml::Value::Integer(_) => {
            toml::Value::Integer(raw.parse().map_err(|_| format!("`{raw}` is not an integer"))?)
        }
        toml::Value::Float(_) => {
            toml::Value::Float(raw.parse().map_err(|_| format!("`{raw}` is not a number"))?)
        }
        toml::Value::Boolean(_) => toml::Value::Boolean(match raw {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => return Err(format!("`{raw}` is not a boolean")),
        }),
        _ => toml::Value::String(raw.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn embedded_defaults_are_valid() {
        let c = Config::load_from(&Overrides::default(), env(&[])).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080");
        assert_eq!(c.max_image_bytes, 15_000_000);
        assert_eq!(c.price_verify, 3);
        assert!(c.database_url().is_none());
    }

    #[test]
    fn environment_overrides_file_and_flags_override_environment() {
        let c = Config::load_from(
            &Overrides { listen: Some("0.0.0.0:9000".into()), ..Default::default() },
            env(&[
                ("IDVERIFY_LISTEN", "127.0.0.1:1"),
                ("IDVERIFY_PRICE_VERIFY", "5"),
                ("IDVERIFY_TEST_X", "y"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert_eq!(c.price_verify, 5);
    }

    #[test]
    fn bad_values_fail_fast_with_the_key_named() {
        let err =
            Config::load_from(&Overrides::default(), env(&[("IDVERIFY_PRICE_VERIFY", "three")])).unwrap_err();
        assert!(err.to_string().contains("IDVERIFY_PRICE_VERIFY"), "{err}");
        let err =
            Config::load_from(&Overrides::default(), env(&[("IDVERIFY_LISTEN", "nowhere")])).unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
        let err = Config::load_from(&Overrides::default(), env(&[("IDVERIFY_DATABASE_URL", "mysql://x")]))
            .unwrap_err();
        assert!(err.to_string().contains("database_url"), "{err}");
    }

    #[test]
    fn face_target_fmr_below_the_calibrated_support_is_refused() {
        let err = Config::load_from(&Overrides::default(), env(&[("IDVERIFY_FACE_TARGET_FMR", "0.000001")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("face_target_fmr") && err.contains("supports"), "{err}");
        let ok = Config::load_from(&Overrides::default(), env(&[("IDVERIFY_FACE_TARGET_FMR", "0.0001")]));
        assert!(ok.is_ok(), "{:?}", ok.err());
    }

    #[test]
    fn face_recognizers_are_named() {
        let c = Config::load_from(&Overrides::default(), env(&[])).unwrap();
        assert_eq!(c.face_recognizers, idverify_face::Recognizers::Cascade);
        let c =
            Config::load_from(&Overrides::default(), env(&[("IDVERIFY_FACE_RECOGNIZERS", "dlib")])).unwrap();
        assert_eq!(c.face_recognizers, idverify_face::Recognizers::Dlib);
        let err = Config::load_from(&Overrides::default(), env(&[("IDVERIFY_FACE_RECOGNIZERS", "sface")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("sface") && err.contains("cascade"), "{err}");
    }

    #[test]
    fn secrets_never_print() {
        let c = Config::load_from(
            &Overrides::default(),
            env(&[
                ("IDVERIFY_DATABASE_URL", "postgres://u:hunter2@h/db"),
                ("IDVERIFY_S3_ACCESS_KEY_ID", "AKID"),
                ("IDVERIFY_S3_SECRET_ACCESS_KEY", "s3cr3t"),
            ]),
        )
        .unwrap();
        let printed = format!("{c:?}");
        assert!(!printed.contains("hunter2") && !printed.contains("s3cr3t"), "{printed}");
    }

    fn temp_file(name: &str, content: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("idverify-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    #[test]
    fn secrets_are_read_from_files_with_the_trailing_newline_trimmed() {
        let url = temp_file("db-url", "postgres://u:from-file@db/idverify\n");
        let key_id = temp_file("key-id", "AKIDFROMFILE\r\n");
        let secret = temp_file("secret", "s3cr3t-from-file");
        let c = Config::load_from(
            &Overrides::default(),
            env(&[
                ("IDVERIFY_DATABASE_URL_FILE", url.to_str().unwrap()),
                ("IDVERIFY_S3_BUCKET", "uploads"),
                ("IDVERIFY_S3_ACCESS_KEY_ID_FILE", key_id.to_str().unwrap()),
                ("IDVERIFY_S3_SECRET_ACCESS_KEY_FILE", secret.to_str().unwrap()),
            ]),
        )
        .unwrap();
        assert_eq!(c.database_url(), Some("postgres://u:from-file@db/idverify"));
        assert_eq!(c.s3_access_key_id, "AKIDFROMFILE");
        assert_eq!(c.s3_secret_access_key.expose(), "s3cr3t-from-file");
        let printed = format!("{c:?}");
        assert!(!printed.contains("from-file@") && !printed.contains("s3cr3t"), "{printed}");
    }

    #[test]
    fn a_secret_and_its_file_together_are_refused() {
        let url = temp_file("db-url-both", "postgres://u:pw@db/idverify\n");
        let err = Config::load_from(
            &Overrides::default(),
            env(&[
                ("IDVERIFY_DATABASE_URL", "postgres://u:other@db/idverify"),
                ("IDVERIFY_DATABASE_URL_FILE", url.to_str().unwrap()),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("database_url_file") && err.contains("not both"), "{err}");
        let secret = temp_file("secret-both", "x\n");
        let err = Config::load_from(
            &Overrides::default(),
            env(&[
                ("IDVERIFY_S3_SECRET_ACCESS_KEY", "y"),
                ("IDVERIFY_S3_SECRET_ACCESS_KEY_FILE", secret.to_str().unwrap()),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("s3_secret_access_key_file"), "{err}");
    }

    #[test]
    fn unreadable_or_empty_secret_files_name_the_key_not_the_content() {
        let missing = std::env::temp_dir().join("idverify-no-such-secret-file");
        let err = Config::load_from(
            &Overrides::default(),
            env(&[("IDVERIFY_S3_ACCESS_KEY_ID_FILE", missing.to_str().unwrap())]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("s3_access_key_id_file") && err.contains("cannot read"), "{err}");
        // A directory cannot be read as a file either.
        let dir = temp_file("a-file", "").parent().unwrap().to_path_buf();
        let err = Config::load_from(
            &Overrides::default(),
            env(&[("IDVERIFY_DATABASE_URL_FILE", dir.to_str().unwrap())]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("database_url_file"), "{err}");
        let empty = temp_file("empty-secret", "\n");
        let err = Config::load_from(
            &Overrides::default(),
            env(&[("IDVERIFY_S3_SECRET_ACCESS_KEY_FILE", empty.to_str().unwrap())]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("s3_secret_access_key_file") && err.contains("empty"), "{err}");
        // A file holding something that is not a URL: the error does not echo it.
        let bad = temp_file("bad-url", "mysql://u:leaked@db/x\n");
        let err = Config::load_from(
            &Overrides::default(),
            env(&[("IDVERIFY_DATABASE_URL_FILE", bad.to_str().unwrap())]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("database_url") && !err.contains("leaked"), "{err}");
    }

    #[test]
    fn s3_needs_both_keys_or_neither() {
        let chain =
            Config::load_from(&Overrides::default(), env(&[("IDVERIFY_S3_BUCKET", "uploads")])).unwrap();
        assert!(chain.s3_enabled(), "a bucket without keys uses the default credential chain");
        let err = Config::load_from(
            &Overrides::default(),
            env(&[("IDVERIFY_S3_BUCKET", "uploads"), ("IDVERIFY_S3_ACCESS_KEY_ID", "AKID")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("s3_secret_access_key"), "{err}");
    }

    #[test]
    fn pool_settings_have_defaults_and_must_be_positive() {
        let c = Config::load_from(&Overrides::default(), env(&[])).unwrap();
        assert_eq!((c.database_max_connections, c.database_connect_timeout_secs), (16, 5));
        let err =
            Config::load_from(&Overrides::default(), env(&[("IDVERIFY_DATABASE_MAX_CONNECTIONS", "0")]))
                .unwrap_err()
                .to_string();
        assert!(err.contains("database_max_connections"), "{err}");
    }

    #[test]
    fn operations_keys_default_and_validate() {
        let c = Config::load_from(&Overrides::default(), env(&[])).unwrap();
        assert_eq!((c.shutdown_drain_delay_secs, c.readyz_requires_database), (5, false));
        assert!(c.metrics_addr().is_none());
        let c = Config::load_from(&Overrides::default(), env(&[("IDVERIFY_METRICS_LISTEN", "0.0.0.0:9090")]))
            .unwrap();
        assert_eq!(c.metrics_addr().unwrap().unwrap(), "0.0.0.0:9090".parse().unwrap());
        for bad in ["9090", "127.0.0.1:8080"] {
            let err = Config::load_from(&Overrides::default(), env(&[("IDVERIFY_METRICS_LISTEN", bad)]))
                .unwrap_err();
            assert!(err.to_string().contains("metrics_listen"), "{bad}: {err}");
        }
    }

    #[test]
    fn unknown_keys_in_a_file_are_rejected() {
        let dir = std::env::temp_dir().join(format!("idverify-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.toml");
        std::fs::write(&path, "lisen = \"127.0.0.1:1\"\n").unwrap();
        let err = Config::load_from(&Overrides { config_file: Some(path), ..Default::default() }, env(&[]))
            .unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }
}
