//! The store suite, run against SQLite (always, in a temp dir) and PostgreSQL (when
//! IDVERIFY_TEST_DATABASE_URL is set, e.g. from `scripts/pg-start.sh`). Every test makes its own
//! uniquely named organizations, so runs can share one database.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use idverify_store::{
    Charge, Clock, IdempotencyBegin, RatePolicy, Store, StoreConfig, StoreError, StoredResponse,
};

/// How long an in-progress idempotency claim may run before it counts as abandoned.
const STALE: Duration = Duration::from_secs(600);
const PG_ENV: &str = "IDVERIFY_TEST_DATABASE_URL";

/// Test-only clock that moves when told to.
struct FakeClock(AtomicI64);

impl FakeClock {
    fn new() -> Arc<FakeClock> {
        Arc::new(FakeClock(AtomicI64::new(chrono::Utc::now().timestamp_millis())))
    }
    fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// One store per backend; the temp dir guard keeps the SQLite file alive for the test.
struct Backends {
    stores: Vec<Store>,
    _sqlite_dir: tempfile::TempDir,
}

async fn backends(test: &str) -> Backends {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = Store::connect(&StoreConfig {
        data_dir: dir.path().to_path_buf(),
        database_url: None,
        ..Default::default()
    })
    .await
    .expect("sqlite store");
    assert_eq!(sqlite.backend(), "sqlite");
    let mut stores = vec![sqlite];
    if let Some(url) = postgres_url() {
        let pg = Store::connect(&StoreConfig {
            data_dir: dir.path().to_path_buf(),
            database_url: Some(url),
            ..Default::default()
        })
        .await
        .expect("postgres store");
        assert_eq!(pg.backend(), "postgres");
        stores.push(pg);
    } else {
        eprintln!("SKIP: postgres tests ({PG_ENV} unset) [{test}]");
    }
    Backends { stores, _sqlite_dir: dir }
}

fn postgres_url() -> Option<String> {
    std::env::var(PG_ENV).ok().filter(|url| !url.trim().is_empty())
}

fn unique(label: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{label}-{}-{nanos}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

#[tokio::test]
async fn orgs_create_find_and_unique_names() {
    for store in backends("orgs").await.stores {
        let name = unique("acme");
        let org = store.create_org(&name, 25).await.unwrap();
        assert!(org.id.starts_with("org_"));
        assert_eq!((org.name.as_str(), org.balance), (name.as_str(), 25));
        assert_eq!(store.find_org(&org.id).await.unwrap().unwrap(), org);
        assert_eq!(store.find_org(&name).await.unwrap().unwrap().id, org.id);
        assert!(store.find_org(&unique("nobody")).await.unwrap().is_none());
        assert!(matches!(store.create_org(&name, 1).await, Err(StoreError::Conflict(_))));
        assert!(matches!(store.create_org(&unique("neg"), -1).await, Err(StoreError::Invalid(_))));
        assert!(matches!(store.create_org("  ", 0).await, Err(StoreError::Invalid(_))));
        // The initial balance is in the ledger as a credit.
        let ledger = store.ledger(&org.id, 10).await.unwrap();
        assert_eq!(ledger.len(), 1);
        assert_eq!((ledger[0].kind.as_str(), ledger[0].amount, ledger[0].balance_after), ("credit", 25, 25));
        store.ping().await.unwrap();
    }
}

#[tokio::test]
async fn api_keys_create_authenticate_revoke() {
    for store in backends("keys").await.stores {
        let org = store.create_org(&unique("keys"), 0).await.unwrap();
        let key = store.create_key(&org.id, "ci").await.unwrap();
        assert!(key.secret.starts_with(&format!("idv_{}_", key.prefix)));
        assert_eq!(key.secret.len(), 4 + 12 + 1 + 64);
        let other = store.create_key(&org.id, "backup").await.unwrap();
        assert_ne!(other.secret, key.secret);

        let principal = store.authenticate(&key.secret).await.unwrap().unwrap();
        assert_eq!(principal.org_id, org.id);
        assert_eq!(principal.org_name, org.name);
        assert_eq!(principal.key_id, key.key_id);

        // Wrong secret with a valid prefix, unknown prefix, malformed.
        let mut wrong = key.secret.clone();
        let last = wrong.pop().unwrap();
        wrong.push(if last == '0' { '1' } else { '0' });
        assert!(store.authenticate(&wrong).await.unwrap().is_none());
        let unknown_prefix = format!("idv_000000000000_{}", &key.secret[17..]);
        assert!(store.authenticate(&unknown_prefix).await.unwrap().is_none());
        for malformed in ["", "idv_", "Bearer abc", "idv_zz_zz", &key.secret[..40], "ключ"] {
            assert!(store.authenticate(malformed).await.unwrap().is_none(), "{malformed:?}");
        }
        let upper = key.secret.to_uppercase();
        assert!(store.authenticate(&upper).await.unwrap().is_none());

        let keys = store.list_keys(&org.id).await.unwrap();
        assert_eq!(keys.len(), 2);
        let info = keys.iter().find(|k| k.key_id == key.key_id).unwrap();
        assert_eq!((info.name.as_str(), info.prefix.as_str()), ("ci", key.prefix.as_str()));
        assert!(info.last_used_at.is_some(), "authentication records last use");
        assert!(!info.revoked);
        let unused = keys.iter().find(|k| k.key_id == other.key_id).unwrap();
        assert!(unused.last_used_at.is_none());

        assert!(store.revoke_key(&key.key_id).await.unwrap());
        assert!(!store.revoke_key(&key.key_id).await.unwrap(), "already revoked");
        assert!(!store.revoke_key("key_does_not_exist").await.unwrap());
        assert!(store.authenticate(&key.secret).await.unwrap().is_none());
        assert!(store.authenticate(&other.secret).await.unwrap().is_some());
        let keys = store.list_keys(&org.id).await.unwrap();
        let info = keys.iter().find(|k| k.key_id == key.key_id).unwrap();
        assert!(info.revoked && info.revoked_at.is_some());

        assert!(matches!(store.create_key("org_missing", "x").await, Err(StoreError::NotFound(_))));
        assert!(matches!(store.list_keys("org_missing").await, Err(StoreError::NotFound(_))));
    }
}

#[tokio::test]
async fn charge_refund_top_up_and_ledger_sums() {
    for store in backends("ledger").await.stores {
        let org = store.create_org(&unique("ledger"), 100).await.unwrap();
        let id = org.id.as_str();
        assert_eq!(
            store.charge(id, 30, "req-1", "/v1/verify").await.unwrap(),
            Charge::Charged { balance: 70 }
        );
        assert_eq!(
            store.charge(id, 80, "req-2", "/v1/verify").await.unwrap(),
            Charge::Insufficient { balance: 70 }
        );
        assert_eq!(store.top_up(id, 50, "invoice 7").await.unwrap(), 120);
        assert_eq!(store.refund(id, 30, "req-1", "/v1/verify").await.unwrap(), 150);
        // Fully refunded: a repeat changes nothing.
        assert_eq!(store.refund(id, 30, "req-1", "/v1/verify").await.unwrap(), 150);
        assert!(matches!(
            store.refund(id, 1, "req-never-charged", "/v1/verify").await,
            Err(StoreError::Invalid(_))
        ));
        assert_eq!(store.charge(id, 5, "req-3", "/v1/face").await.unwrap(), Charge::Charged { balance: 145 });
        assert!(matches!(store.refund(id, 6, "req-3", "/v1/face").await, Err(StoreError::Invalid(_))));
        // Partial refunds add up to at most the charge.
        assert_eq!(store.refund(id, 2, "req-3", "/v1/face").await.unwrap(), 147);
        assert_eq!(store.refund(id, 3, "req-3", "/v1/face").await.unwrap(), 150);
        assert_eq!(store.refund(id, 1, "req-3", "/v1/face").await.unwrap(), 150);
        // Zero charges nothing and writes nothing; negative amounts are refused.
        assert_eq!(store.charge(id, 0, "req-4", "/v1/free").await.unwrap(), Charge::Charged { balance: 150 });
        assert!(matches!(store.charge(id, -1, "r", "/e").await, Err(StoreError::Invalid(_))));
        assert!(matches!(store.top_up(id, 0, "").await, Err(StoreError::Invalid(_))));
        assert!(matches!(store.charge(id, 1, "", "/e").await, Err(StoreError::Invalid(_))));
        assert!(matches!(store.top_up(id, i64::MAX, "overflow").await, Err(StoreError::Invalid(_))));
        assert!(matches!(store.charge("org_missing", 1, "r", "/e").await, Err(StoreError::NotFound(_))));
        assert!(matches!(store.balance("org_missing").await, Err(StoreError::NotFound(_))));
        assert_eq!(store.balance(id).await.unwrap(), 150);

        let ledger = store.ledger(id, 100).await.unwrap();
        let kinds: Vec<(&str, i64, i64)> =
            ledger.iter().map(|e| (e.kind.as_str(), e.amount, e.balance_after)).collect();
        // Newest first.
        assert_eq!(
            kinds,
            vec![
                ("refund", 3, 150),
                ("refund", 2, 147),
                ("debit", 5, 145),
                ("refund", 30, 150),
                ("credit", 50, 120),
                ("debit", 30, 70),
                ("credit", 100, 100),
            ]
        );
        let signed_sum: i64 =
            ledger.iter().map(|e| if e.kind == "debit" { -e.amount } else { e.amount }).sum();
        assert_eq!(signed_sum, 150);
        for entry in ledger.iter().filter(|e| e.kind != "credit") {
            assert!(entry.request_id.is_some() && entry.endpoint.is_some());
        }
        assert_eq!(ledger[4].note.as_deref(), Some("invoice 7"));
        assert_eq!(store.ledger(id, 2).await.unwrap().len(), 2);
        assert!(ledger.windows(2).all(|w| w[0].id > w[1].id));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_charges_at_balance_ten() {
    for store in backends("concurrency").await.stores {
        let org = store.create_org(&unique("race"), 10).await.unwrap();
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let store = store.clone();
                let org_id = org.id.clone();
                tokio::spawn(async move { store.charge(&org_id, 1, &format!("req-{i}"), "/v1/verify").await })
            })
            .collect();
        let (mut charged, mut insufficient) = (0, 0);
        for task in tasks {
            match task.await.unwrap().unwrap() {
                Charge::Charged { .. } => charged += 1,
                Charge::Insufficient { balance } => {
                    assert_eq!(balance, 0);
                    insufficient += 1
                }
            }
        }
        assert_eq!((charged, insufficient), (10, 90), "backend {}", store.backend());
        assert_eq!(store.balance(&org.id).await.unwrap(), 0);
        let ledger = store.ledger(&org.id, 1000).await.unwrap();
        let debits: Vec<_> = ledger.iter().filter(|e| e.kind == "debit").collect();
        assert_eq!(debits.len(), 10);
        assert_eq!(debits.iter().map(|e| e.amount).sum::<i64>(), 10);
        let mut after: Vec<i64> = debits.iter().map(|e| e.balance_after).collect();
        after.sort_unstable();
        assert_eq!(after, (0..10).collect::<Vec<_>>(), "each debit saw a distinct balance");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refunds_never_exceed_the_charge() {
    for store in backends("refund race").await.stores {
        let org = store.create_org(&unique("refund-race"), 10).await.unwrap();
        store.charge(&org.id, 4, "req-r", "/v1/verify").await.unwrap();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let store = store.clone();
                let org_id = org.id.clone();
                tokio::spawn(async move { store.refund(&org_id, 1, "req-r", "/v1/verify").await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(store.balance(&org.id).await.unwrap(), 10, "backend {}", store.backend());
        let refunds =
            store.ledger(&org.id, 100).await.unwrap().into_iter().filter(|e| e.kind == "refund").count();
        assert_eq!(refunds, 4);
    }
}

#[tokio::test]
async fn idempotency_states_and_expiry() {
    for store in backends("idempotency").await.stores {
        let clock = FakeClock::new();
        let store = store.with_clock(clock.clone());
        let org = store.create_org(&unique("idem"), 0).await.unwrap();
        let id = org.id.as_str();
        let response = StoredResponse {
            status: 200,
            content_type: "application/json".into(),
            body: br#"{"verdict":"match"}"#.to_vec(),
            request_id: "req-first".into(),
        };

        assert_eq!(
            store.idempotency_begin(id, "k1", "fp-a", STALE).await.unwrap(),
            IdempotencyBegin::Started
        );
        assert_eq!(
            store.idempotency_begin(id, "k1", "fp-a", STALE).await.unwrap(),
            IdempotencyBegin::InProgress
        );
        assert_eq!(
            store.idempotency_begin(id, "k1", "fp-b", STALE).await.unwrap(),
            IdempotencyBegin::Mismatch
        );
        store.idempotency_complete(id, "k1", &response).await.unwrap();
        assert_eq!(
            store.idempotency_begin(id, "k1", "fp-a", STALE).await.unwrap(),
            IdempotencyBegin::Replay(response.clone())
        );
        assert_eq!(
            store.idempotency_begin(id, "k1", "fp-b", STALE).await.unwrap(),
            IdempotencyBegin::Mismatch
        );
        // Completing twice is refused: the record is no longer in progress.
        assert!(matches!(
            store.idempotency_complete(id, "k1", &response).await,
            Err(StoreError::NotFound(_))
        ));

        // Keys are per organization.
        let other = store.create_org(&unique("idem-other"), 0).await.unwrap();
        assert_eq!(
            store.idempotency_begin(&other.id, "k1", "fp-z", STALE).await.unwrap(),
            IdempotencyBegin::Started
        );

        // Abandon frees the key for a retry.
        assert_eq!(
            store.idempotency_begin(id, "k2", "fp-a", STALE).await.unwrap(),
            IdempotencyBegin::Started
        );
        store.idempotency_abandon(id, "k2").await.unwrap();
        assert_eq!(
            store.idempotency_begin(id, "k2", "fp-a", STALE).await.unwrap(),
            IdempotencyBegin::Started
        );

        // An in-progress record older than the longest a request can run belongs to a dead worker.
        assert_eq!(
            store.idempotency_begin(id, "k3", "fp-a", STALE).await.unwrap(),
            IdempotencyBegin::Started
        );
        clock.advance(10 * 60 * 1000 - 1);
        assert_eq!(
            store.idempotency_begin(id, "k3", "fp-a", STALE).await.unwrap(),
            IdempotencyBegin::InProgress
        );
        clock.advance(1);
        assert_eq!(
            store.idempotency_begin(id, "k3", "fp-a", STALE).await.unwrap(),
            IdempotencyBegin::Started
        );

        // Just before 24 h the replay is still there; after, the key starts afresh.
        clock.advance(24 * 3600 * 1000 - 10 * 60 * 1000 - 1);
        assert!(matches!(
            store.idempotency_begin(id, "k1", "fp-a", STALE).await.unwrap(),
            IdempotencyBegin::Replay(_)
        ));
        clock.advance(1);
        assert_eq!(
            store.idempotency_begin(id, "k1", "fp-b", STALE).await.unwrap(),
            IdempotencyBegin::Started
        );
        // The other org's record (started at the beginning) is now expired and swept.
        assert!(store.purge_expired().await.unwrap() >= 1);
        // k2 was in progress for a day: its worker is presumed dead.
        assert_eq!(
            store.idempotency_begin(id, "k2", "fp-a", STALE).await.unwrap(),
            IdempotencyBegin::Started
        );

        assert!(matches!(
            store.idempotency_begin("org_missing", "k", "fp", STALE).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(store.idempotency_begin(id, "", "fp", STALE).await, Err(StoreError::Invalid(_))));
    }
}

#[tokio::test]
async fn rate_limit_burst_refusal_refill_and_override() {
    let default_policy = RatePolicy { per_second: 2.0, burst: 3 };
    for store in backends("rate").await.stores {
        let clock = FakeClock::new();
        let store = store.with_clock(clock.clone());
        let org = store.create_org(&unique("rate"), 0).await.unwrap();
        let id = org.id.as_str();

        let mut seen = Vec::new();
        for _ in 0..4 {
            let d = store.check_rate_limit(id, default_policy).await.unwrap();
            seen.push((d.allowed, d.limit, d.remaining));
        }
        assert_eq!(seen, vec![(true, 3, 2), (true, 3, 1), (true, 3, 0), (false, 3, 0)]);
        let refused = store.check_rate_limit(id, default_policy).await.unwrap();
        assert!(!refused.allowed);
        assert_eq!((refused.retry_after_seconds, refused.reset_seconds), (1, 2));

        // 2 tokens/s: after 500 ms exactly one request passes.
        clock.advance(500);
        let d = store.check_rate_limit(id, default_policy).await.unwrap();
        assert!(d.allowed && d.remaining == 0 && d.retry_after_seconds == 0);
        assert!(!store.check_rate_limit(id, default_policy).await.unwrap().allowed);
        // A long pause refills to the burst, not beyond.
        clock.advance(60_000);
        let d = store.check_rate_limit(id, default_policy).await.unwrap();
        assert_eq!((d.allowed, d.remaining), (true, 2));

        // Per-org override: 1 request, then 1 per 10 s.
        let strict = store.create_org(&unique("strict"), 0).await.unwrap();
        store.set_rate_limit(&strict.id, Some(RatePolicy { per_second: 0.1, burst: 1 })).await.unwrap();
        let first = store.check_rate_limit(&strict.id, default_policy).await.unwrap();
        assert_eq!((first.allowed, first.limit, first.remaining), (true, 1, 0));
        let second = store.check_rate_limit(&strict.id, default_policy).await.unwrap();
        assert_eq!((second.allowed, second.retry_after_seconds), (false, 10));
        // The other org is untouched by the strict one.
        assert!(store.check_rate_limit(id, default_policy).await.unwrap().allowed);
        // Clearing the override brings the default back.
        store.set_rate_limit(&strict.id, None).await.unwrap();
        clock.advance(10_000);
        assert_eq!(store.check_rate_limit(&strict.id, default_policy).await.unwrap().limit, 3);

        assert!(matches!(
            store.set_rate_limit(id, Some(RatePolicy { per_second: 0.0, burst: 1 })).await,
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            store.check_rate_limit("org_missing", default_policy).await,
            Err(StoreError::NotFound(_))
        ));
    }
}

#[tokio::test]
async fn rate_limit_with_the_real_clock() {
    // Without a test clock PostgreSQL buckets run on the database clock: same behaviour.
    let policy = RatePolicy { per_second: 0.001, burst: 2 };
    for store in backends("rate real clock").await.stores {
        let org = store.create_org(&unique("rate-real"), 0).await.unwrap();
        let mut allowed = Vec::new();
        for _ in 0..3 {
            allowed.push(store.check_rate_limit(&org.id, policy).await.unwrap());
        }
        assert_eq!(allowed.iter().map(|d| d.allowed).collect::<Vec<_>>(), vec![true, true, false]);
        assert_eq!(allowed[2].remaining, 0);
        // One token per 1000 s: the refused request has to wait (almost) that long.
        assert!((990..=1000).contains(&allowed[2].retry_after_seconds), "{:?}", allowed[2]);
    }
}

#[tokio::test]
async fn postgres_replicas_share_one_rate_limit() {
    let Some(url) = postgres_url() else {
        eprintln!("SKIP: postgres tests ({PG_ENV} unset) [shared rate limit]");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg =
        StoreConfig { data_dir: dir.path().to_path_buf(), database_url: Some(url), ..Default::default() };
    let clock = FakeClock::new();
    let replica_a = Store::connect(&cfg).await.unwrap().with_clock(clock.clone());
    let replica_b = Store::connect(&cfg).await.unwrap().with_clock(clock.clone());
    let org = replica_a.create_org(&unique("replicas"), 0).await.unwrap();
    let policy = RatePolicy { per_second: 1.0, burst: 3 };
    let mut allowed = Vec::new();
    for replica in [&replica_a, &replica_b, &replica_a, &replica_b] {
        allowed.push(replica.check_rate_limit(&org.id, policy).await.unwrap().allowed);
    }
    assert_eq!(allowed, vec![true, true, true, false]);

    // Concurrent checks from both replicas still hand out exactly `burst` tokens.
    let org = replica_a.create_org(&unique("replicas-race"), 0).await.unwrap();
    let policy = RatePolicy { per_second: 0.001, burst: 5 };
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let store = if i % 2 == 0 { replica_a.clone() } else { replica_b.clone() };
            let org_id = org.id.clone();
            tokio::spawn(async move { store.check_rate_limit(&org_id, policy).await })
        })
        .collect();
    let mut passed = 0;
    for task in tasks {
        passed += usize::from(task.await.unwrap().unwrap().allowed);
    }
    assert_eq!(passed, 5);
}

#[tokio::test]
async fn sqlite_file_created_in_data_dir_and_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("nested").join("data");
    let cfg = StoreConfig { data_dir: data_dir.clone(), database_url: None, ..Default::default() };
    let name = unique("persist");
    {
        let store = Store::connect(&cfg).await.unwrap();
        store.create_org(&name, 7).await.unwrap();
        store.close().await;
    }
    assert!(data_dir.join("idverify.sqlite3").is_file());
    // Reconnecting runs migrations again (a no-op) and sees the data.
    let store = Store::connect(&cfg).await.unwrap();
    assert_eq!(store.find_org(&name).await.unwrap().unwrap().balance, 7);
}

#[tokio::test]
async fn unreachable_database_is_unavailable_quickly() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens there.
    let started = Instant::now();
    let result = Store::connect(&StoreConfig {
        data_dir: dir.path().to_path_buf(),
        database_url: Some("postgres://postgres@127.0.0.1:1/idverify".into()),
        // Refused connections are retried (a server may be starting) until the connect timeout.
        connect_timeout: Duration::from_secs(2),
        ..Default::default()
    })
    .await;
    let elapsed = started.elapsed();
    assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
    let message = result.unwrap_err().to_string();
    assert!(message.contains("127.0.0.1:1") && message.contains("within 2 s"), "{message}");
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");

    // A data dir that cannot be created (its parent is a file) is Unavailable too.
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let result = Store::connect(&StoreConfig {
        data_dir: file.join("data"),
        database_url: None,
        ..Default::default()
    })
    .await;
    assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");

    let result = Store::connect(&StoreConfig {
        data_dir: dir.path().to_path_buf(),
        database_url: Some("mysql://localhost/x".into()),
        ..Default::default()
    })
    .await;
    assert!(matches!(result, Err(StoreError::Invalid(_))));
}

/// Stops and restarts a private PostgreSQL cluster (via scripts/pg-start.sh / pg-stop.sh) under a
/// live `Store`: calls fail fast with `Unavailable` while it is down and work again afterwards
/// without reconnecting by hand.
#[tokio::test]
async fn postgres_outage_is_unavailable_then_recovers() {
    if postgres_url().is_none() {
        eprintln!("SKIP: postgres tests ({PG_ENV} unset) [outage and recovery]");
        return;
    }
    let scripts = idverify_testkit::workspace_root().join("scripts");
    let cluster = tempfile::Builder::new().prefix("idverify-pg-outage").tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let run = |script: &str, args: &[&str]| {
        let output = std::process::Command::new("bash")
            .arg(scripts.join(script))
            .args(args)
            .output()
            .expect("run script");
        assert!(output.status.success(), "{script} failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    let dir = cluster.path().to_str().unwrap().to_string();
    let port_text = port.to_string();
    let url = run("pg-start.sh", &[&dir, &port_text]);
    // Stops the cluster even when an assertion below fails.
    struct StopOnDrop(std::path::PathBuf, String);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            let _ = std::process::Command::new("bash").arg(self.0.join("pg-stop.sh")).arg(&self.1).output();
        }
    }
    let _stop = StopOnDrop(scripts.clone(), dir.clone());
    assert_eq!(url, format!("postgres://postgres@127.0.0.1:{port}/idverify"));

    let store = Store::connect(&StoreConfig {
        data_dir: cluster.path().to_path_buf(),
        database_url: Some(url),
        ..Default::default()
    })
    .await
    .unwrap();
    let org = store.create_org(&unique("outage"), 5).await.unwrap();
    store.ping().await.unwrap();

    run("pg-stop.sh", &[&dir]);
    let started = Instant::now();
    let down = store.ping().await;
    assert!(matches!(down, Err(StoreError::Unavailable(_))), "{down:?}");
    let charged = store.charge(&org.id, 1, "req-down", "/v1/verify").await;
    assert!(matches!(charged, Err(StoreError::Unavailable(_))), "{charged:?}");
    let outage_errors = started.elapsed();
    eprintln!("outage: ping + charge failed with Unavailable in {outage_errors:?}");
    assert!(outage_errors < Duration::from_secs(6), "took {outage_errors:?}");

    run("pg-start.sh", &[&dir, &port_text]);
    let mut recovered = false;
    for _ in 0..20 {
        if store.ping().await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(recovered, "store did not reconnect");
    eprintln!("outage: recovered {:?} after restart began", started.elapsed());
    // Nothing was half-written while the database was down.
    assert_eq!(store.balance(&org.id).await.unwrap(), 5);
    assert_eq!(
        store.charge(&org.id, 1, "req-up", "/v1/verify").await.unwrap(),
        Charge::Charged { balance: 4 }
    );
    store.close().await;
}

#[tokio::test]
async fn a_charge_is_a_reservation_until_captured_refunded_or_swept_once() {
    for store in backends("reservations").await.stores {
        let clock = FakeClock::new();
        let store = store.with_clock(clock.clone());
        let org = store.create_org(&unique("resv"), 12).await.unwrap();
        let id = org.id.as_str();
        // Charged two minutes ago, so that the sweeps below (one shared database, tests running
        // in parallel) reach only these reservations, not other tests' fresh ones.
        clock.advance(-120_000);
        for request in ["answered", "stored", "failed", "orphan-1", "orphan-2"] {
            store.charge(id, 2, request, "/v1/face/detect").await.unwrap();
        }
        clock.advance(120_000);
        assert!(store.open_reservations().await.unwrap() >= 4);
        store.capture(id, "answered").await.unwrap();
        // Storing an answer for replay captures its request's charge in the same transaction.
        assert_eq!(
            store.idempotency_begin(id, "k-stored", "fp", STALE).await.unwrap(),
            IdempotencyBegin::Started
        );
        let stored = StoredResponse {
            status: 200,
            content_type: "application/json".into(),
            body: b"{}".to_vec(),
            request_id: "stored".into(),
        };
        store.idempotency_complete(id, "k-stored", &stored).await.unwrap();
        store.refund(id, 2, "failed", "/v1/face/detect").await.unwrap();
        assert_eq!(store.balance(id).await.unwrap(), 12 - 8);

        // Reservations younger than the bound belong to live requests: the sweep leaves them.
        store.sweep_reservations(Duration::from_secs(200)).await.unwrap();
        assert_eq!(store.balance(id).await.unwrap(), 12 - 8);
        // Every replica sweeps at once: each orphan is refunded exactly once.
        let (a, b, c) = tokio::join!(
            store.sweep_reservations(Duration::from_secs(60)),
            store.sweep_reservations(Duration::from_secs(60)),
            store.sweep_reservations(Duration::from_secs(60)),
        );
        assert!(a.unwrap() + b.unwrap() + c.unwrap() >= 2, "the two orphans, and possibly other tests' rows");
        assert_eq!(store.balance(id).await.unwrap(), 12 - 4, "only the two answered requests stay charged");
        let ledger = store.ledger(id, 100).await.unwrap();
        let refunds: Vec<_> = ledger.iter().filter(|e| e.kind == "refund").collect();
        assert_eq!(refunds.len(), 3, "failed in line, two orphans by the sweep");
        for orphan in ["orphan-1", "orphan-2"] {
            assert_eq!(refunds.iter().filter(|e| e.request_id.as_deref() == Some(orphan)).count(), 1);
        }
        // A late in-line refund of a swept request changes nothing.
        store.refund(id, 2, "orphan-1", "/v1/face/detect").await.unwrap();
        assert_eq!(store.balance(id).await.unwrap(), 8);
    }
}
