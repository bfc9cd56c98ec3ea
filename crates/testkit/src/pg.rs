//! A private PostgreSQL cluster over TLS for tests: `scripts/pg-start.sh` with `PG_TLS=1` starts it
//! with `ssl=on` and a server certificate for `localhost` only, signed by a CA the script makes
//! (and an unrelated second CA, `other-ca.crt`). Stopped and removed on drop.

use std::path::PathBuf;
use std::process::Command;

use crate::script;

pub struct TlsCluster {
    pub dir: PathBuf,
    pub port: u16,
}

impl TlsCluster {
    /// Starts a cluster under `/tmp/idverify-<label>-<pid>` (the server runs as user `postgres`
    /// when we are root, and must reach the directory). Blocking.
    pub fn start(label: &str) -> TlsCluster {
        let dir = PathBuf::from(format!("/tmp/idverify-{label}-{}", std::process::id()));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cluster = TlsCluster { dir, port };
        let output = Command::new("bash")
            .arg(script("pg-start.sh"))
            .arg(&cluster.dir)
            .arg(port.to_string())
            .env("PG_TLS", "1")
            .output()
            .expect("run pg-start.sh");
        assert!(output.status.success(), "pg-start.sh failed: {}", String::from_utf8_lossy(&output.stderr));
        cluster
    }

    /// A file the script made: `ca.crt`, `other-ca.crt`, the server's certificate and key.
    pub fn cert(&self, name: &str) -> PathBuf {
        self.dir.join("tls").join(name)
    }

    /// A URL with a password (trust auth ignores it), so tests can check it is never echoed.
    pub fn url(&self, host: &str, params: &str) -> String {
        format!("postgres://postgres:not-shown-pw@{host}:{}/idverify?{params}", self.port)
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script("pg-stop.sh")).arg(&self.dir).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
