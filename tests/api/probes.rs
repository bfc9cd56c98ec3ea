//! Probes and shutdown as a load balancer sees them: `/readyz` (models warmed up, not draining;
//! the database reported but deciding only with `readyz_requires_database`), the drain delay on
//! the shutdown signal, `idverify healthcheck`, and the separate metrics listener.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;

async fn get(addr: SocketAddr, path: &str) -> reqwest::Result<(u16, String)> {
    // A new connection each time, as a balancer's probe or a new client would open.
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let response = client.get(format!("http://{addr}{path}")).send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

#[tokio::test]
async fn readyz_reports_each_engines_warm_up() {
    let app = TestApp::spawn().await;
    let r = app.get("/readyz").await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["ready"], json!(true));
    assert_eq!(r.json["models"], json!(true));
    assert_eq!(r.json["draining"], json!(false));
    // The fakes report themselves; the real engines report each model (see engines.rs).
    for engine in ["fake_face", "fake_document"] {
        assert_eq!(r.json["engines"][engine]["ok"], json!(true), "{}", r.json);
        assert!(r.json["engines"][engine]["warmupMs"].is_number(), "{}", r.json);
    }
}

#[tokio::test]
async fn a_database_outage_is_reported_but_decides_readiness_only_when_configured() {
    for (requires_database, status) in [(false, 200), (true, 503)] {
        let app = TestApp::with(Options {
            env: vec![("IDVERIFY_READYZ_REQUIRES_DATABASE", requires_database.to_string())],
            ..Default::default()
        })
        .await;
        let up = app.get("/readyz").await;
        assert_eq!((up.status.as_u16(), &up.json["database"]), (200, &json!(true)), "{}", up.json);
        // The pool closed: every query fails, as with a database that went away.
        app.store.close().await;
        let down = app.get("/readyz").await;
        assert_eq!(down.status, status, "requires_database={requires_database}: {}", down.json);
        assert_eq!(down.json["database"], json!(false), "{}", down.json);
        assert_eq!(down.json["ready"], json!(status == 200), "{}", down.json);
        // Liveness never looks at the database.
        assert_eq!(app.get("/healthz").await.status, 200);
    }
}

#[tokio::test]
async fn on_the_shutdown_signal_readyz_fails_at_once_while_requests_are_served_for_the_drain_delay() {
    let delay = Duration::from_secs(2);
    let app = TestApp::with(Options {
        env: vec![("IDVERIFY_SHUTDOWN_DRAIN_DELAY_SECS", delay.as_secs().to_string())],
        ..Default::default()
    })
    .await;
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let (addr, server) = app.serve(stopped).await;
    assert_eq!(get(addr, "/readyz").await.unwrap().0, 200);

    let signalled = Instant::now();
    stop.send(()).unwrap();
    // The server task sees the signal within a scheduling round.
    let (status, body) = loop {
        let (status, body) = get(addr, "/readyz").await.expect("still accepting while draining");
        if status != 200 || signalled.elapsed() > Duration::from_millis(500) {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(status, 503, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&body["draining"], &body["ready"], &body["models"]),
        (&json!(true), &json!(false), &json!(true))
    );

    // A normal request on a new connection is still served during the delay.
    let detect = reqwest::Client::new()
        .post(format!("http://{addr}/v1/face/detect"))
        .header("x-api-key", &app.api_key)
        .json(&json!({"image": b64(&selfie_png(1))}))
        .send()
        .await
        .expect("served while draining");
    assert_eq!(detect.status(), 200);
    assert!(signalled.elapsed() < delay, "the checks above ran within the delay");
    assert_eq!(get(addr, "/healthz").await.unwrap().0, 200, "alive while draining");

    // After the delay the listener closes; with nothing in flight the server stops.
    tokio::time::timeout(delay + Duration::from_secs(5), server).await.expect("the server stops").unwrap();
    let stopped_after = signalled.elapsed();
    assert!(stopped_after >= delay, "stopped {stopped_after:?} after the signal, before the drain delay");
    let refused = tokio::net::TcpStream::connect(addr).await.expect_err("new connections are refused");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    println!("drain delay {delay:?}: server stopped {stopped_after:?} after the signal");
}

/// `idverify healthcheck`, the built binary, against a running server and against nothing.
#[tokio::test]
async fn the_healthcheck_subcommand_exits_0_on_a_live_server_and_1_otherwise() {
    let app = TestApp::spawn().await;
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let (addr, server) = app.serve(stopped).await;
    let healthcheck = |listen: String| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_idverify"))
                .args(["healthcheck", "--listen", &listen])
                .env_remove("IDVERIFY_CONFIG")
                .output()
                .unwrap()
        })
    };
    // A wildcard listen address is probed on loopback.
    let live = healthcheck(format!("0.0.0.0:{}", addr.port())).await.unwrap();
    assert_eq!(live.status.code(), Some(0), "{}", String::from_utf8_lossy(&live.stderr));
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server).await.unwrap().unwrap();

    let started = Instant::now();
    let dead = healthcheck(addr.to_string()).await.unwrap();
    let stderr = String::from_utf8_lossy(&dead.stderr);
    assert_eq!(dead.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(&addr.to_string()), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test]
async fn metrics_listen_serves_metrics_apart_from_the_api() {
    let app = TestApp::with(Options {
        env: vec![("IDVERIFY_METRICS_LISTEN", "127.0.0.1:0".into())],
        ..Default::default()
    })
    .await;
    let server = idverify::app::Server::bind(app.state.clone()).await.unwrap();
    let (addr, metrics) = (server.local_addr(), server.metrics_addr().expect("a metrics listener"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    assert_eq!(get(addr, "/metrics").await.unwrap().0, 404, "not on the main listener");
    let (status, text) = get(metrics, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    for name in
        ["idverify_requests_in_flight 0", "idverify_requests_queued 0", "idverify_build_info{version="]
    {
        assert!(text.contains(name), "{name}: {text}");
    }
    assert_eq!(get(metrics, "/v1/info").await.unwrap().0, 404, "only /metrics there");
    assert_eq!(get(addr, "/healthz").await.unwrap().0, 200);
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), handle).await.unwrap().unwrap().unwrap();
}
