//! Logs, request ids and Prometheus metrics.
//!
//! Logs are JSON lines with request id, route, status and latency. Nothing personal is ever
//! logged: handlers log outcomes (codes, timings), never field values or image bytes.

mod process;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Runs `fut` with `id` as the current request id (read by error bodies and handlers).
pub async fn with_request_id<F: std::future::Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

/// The id of the request being served, or `-` outside a request.
pub fn current_request_id() -> String {
    REQUEST_ID.try_with(|id| id.clone()).unwrap_or_else(|_| "-".to_string())
}

/// A caller-supplied `x-request-id` is kept only if it is short and plain (it ends up in logs).
pub fn accept_request_id(candidate: Option<&str>) -> String {
    match candidate {
        Some(id)
            if !id.is_empty()
                && id.len() <= 64
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            id.to_string()
        }
        _ => uuid::Uuid::new_v4().to_string(),
    }
}

pub fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

const LATENCY_BUCKETS: [f64; 14] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.4, 0.6, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Default, Clone)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.buckets[i] += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {}", self.buckets[i]);
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// A small Prometheus registry: request counts and latency per route and status, engine stage
/// timings. Label values come from a closed set (route templates, status codes, stage names).
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), Histogram>>,
    stages: Mutex<BTreeMap<&'static str, Histogram>>,
    overloaded: std::sync::atomic::AtomicU64,
    in_flight: AtomicI64,
    queued: AtomicI64,
    /// Face matches by the recognizers that decided (`dlib`, `dlib+sface`).
    face_decisions: Mutex<BTreeMap<&'static str, u64>>,
}

/// The gauges of the engines' admission gate (`verify::VerifyService`).
#[derive(Debug, Clone, Copy)]
pub enum Gauge {
    /// Requests admitted to the engines and being served.
    InFlight,
    /// Requests waiting for admission.
    Queued,
}

/// Holds one unit of a [`Gauge`] until dropped (also when its request is cut).
pub struct GaugeGuard {
    metrics: Arc<Metrics>,
    gauge: Gauge,
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.metrics.gauge(self.gauge).fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn observe_request(&self, route: &str, status: u16, elapsed: Duration) {
        let mut map = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((route.to_string(), status)).or_default().observe(elapsed.as_secs_f64());
    }

    pub fn observe_stage(&self, stage: &'static str, elapsed: Duration) {
        let mut map = self.stages.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(stage).or_default().observe(elapsed.as_secs_f64());
    }

    fn gauge(&self, gauge: Gauge) -> &AtomicI64 {
        match gauge {
            Gauge::InFlight => &self.in_flight,
            Gauge::Queued => &self.queued,
        }
    }

    /// Counts one request in `gauge` until the guard is dropped.
    pub fn hold(self: &Arc<Self>, gauge: Gauge) -> GaugeGuard {
        self.gauge(gauge).fetch_add(1, Ordering::Relaxed);
        GaugeGuard { metrics: self.clone(), gauge }
    }

    pub fn count_overload(&self) {
        self.overloaded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts a face match decided by `recognizers` (the names of `MatchScore::recognizers`).
    pub fn count_face_decision(&self, recognizers: &[&str]) {
        let label = if recognizers.len() > 1 { "dlib+sface" } else { "dlib" };
        let mut map = self.face_decisions.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry(label).or_default() += 1;
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP idverify_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE idverify_http_requests_total counter\n");
        let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for ((route, status), h) in &requests {
            let _ = writeln!(
                out,
                "idverify_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP idverify_http_request_duration_seconds HTTP latency by route and status.\n");
        out.push_str("# TYPE idverify_http_request_duration_seconds histogram\n");
        for ((route, status), h) in &requests {
            let labels = format!("route=\"{route}\",status=\"{status}\"");
            h.render(&mut out, "idverify_http_request_duration_seconds", &labels);
        }
        out.push_str("# HELP idverify_engine_stage_duration_seconds Engine stage timings.\n");
        out.push_str("# TYPE idverify_engine_stage_duration_seconds histogram\n");
        let stages = self.stages.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for (stage, h) in &stages {
            h.render(&mut out, "idverify_engine_stage_duration_seconds", &format!("stage=\"{stage}\""));
        }
        out.push_str(
            "# HELP idverify_overloaded_total Requests refused with 503 because the engines were full.\n",
        );
        out.push_str("# TYPE idverify_overloaded_total counter\n");
        let _ = writeln!(
            out,
            "idverify_overloaded_total {}",
            self.overloaded.load(std::sync::atomic::Ordering::Relaxed)
        );
        for (name, help, gauge) in [
            (
                "idverify_requests_in_flight",
                "Requests inside the engines (admitted, being served).",
                Gauge::InFlight,
            ),
            ("idverify_requests_queued", "Requests waiting for admission to the engines.", Gauge::Queued),
        ] {
            let value = self.gauge(gauge).load(Ordering::Relaxed);
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
        out.push_str("# HELP idverify_build_info The running build; the value is always 1.\n");
        out.push_str("# TYPE idverify_build_info gauge\n");
        let _ = writeln!(out, "idverify_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
        process::render(&mut out);
        out.push_str(
            "# HELP idverify_face_recognizer_decisions_total Face matches by the recognizers that decided.\n",
        );
        out.push_str("# TYPE idverify_face_recognizer_decisions_total counter\n");
        for (label, n) in self.face_decisions.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "idverify_face_recognizer_decisions_total{{recognizers=\"{label}\"}} {n}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.observe_request("/v1/face/detect", 200, Duration::from_millis(30));
        m.observe_request("/v1/face/detect", 200, Duration::from_millis(300));
        let text = m.render();
        assert!(text.contains("idverify_http_requests_total{route=\"/v1/face/detect\",status=\"200\"} 2"));
        assert!(text.contains("le=\"0.05\"} 1"));
        assert!(text.contains("le=\"0.4\"} 2"));
        assert!(text.contains("le=\"+Inf\"} 2"));
    }

    #[test]
    fn gauges_follow_their_guards() {
        let m = Arc::new(Metrics::default());
        let queued = m.hold(Gauge::Queued);
        let (a, b) = (m.hold(Gauge::InFlight), m.hold(Gauge::InFlight));
        let text = m.render();
        assert!(text.contains("\nidverify_requests_in_flight 2\n"), "{text}");
        assert!(text.contains("\nidverify_requests_queued 1\n"), "{text}");
        drop((queued, a, b));
        let text = m.render();
        assert!(text.contains("\nidverify_requests_in_flight 0\n"), "{text}");
        assert!(text.contains("\nidverify_requests_queued 0\n"), "{text}");
        assert!(
            text.contains(&format!("idverify_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION")))
        );
    }

    #[test]
    fn face_decisions_are_counted_by_recognizers() {
        let m = Metrics::default();
        m.count_face_decision(idverify_face::DLIB_ALONE);
        m.count_face_decision(idverify_face::DLIB_AND_SFACE);
        m.count_face_decision(idverify_face::DLIB_AND_SFACE);
        let text = m.render();
        assert!(text.contains("idverify_face_recognizer_decisions_total{recognizers=\"dlib\"} 1"), "{text}");
        assert!(text.contains("idverify_face_recognizer_decisions_total{recognizers=\"dlib+sface\"} 2"));
    }

    #[test]
    fn request_ids_from_callers_are_sanitized() {
        assert_eq!(accept_request_id(Some("abc-123_X")), "abc-123_X");
        let replaced = accept_request_id(Some("bad id\nwith newline"));
        assert_eq!(replaced.len(), 36);
        assert_ne!(accept_request_id(None), accept_request_id(None));
    }
}
