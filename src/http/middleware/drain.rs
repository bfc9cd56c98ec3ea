//! A request refused before its body was read (401, 402, 429, a bad idempotency key) still has
//! its body on the wire. Answering and closing then makes the client's upload fail with a broken
//! pipe or a reset instead of showing our answer (curl -F: "Send failure: Broken pipe"). So the
//! body is read and dropped first, within the body limit and a short time; past either, the
//! answer goes out with `Connection: close`.

use std::time::Duration;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::{CONNECTION, CONTENT_LENGTH};
use axum::response::Response;
use http_body_util::BodyExt;

use crate::http::AppState;

/// How long a refused request's remaining body is read before giving up on it.
const DRAIN_TIME: Duration = Duration::from_secs(5);

pub(super) async fn then_answer(state: &AppState, req: Request, mut refusal: Response) -> Response {
    let limit = state.config.max_body_bytes;
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let drained = declared.is_none_or(|n| n <= limit)
        && tokio::time::timeout(DRAIN_TIME, discard(req, limit)).await.unwrap_or(false);
    if !drained {
        refusal.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    }
    refusal
}

/// Reads the body to its end; false when it is longer than `limit` bytes or fails.
async fn discard(req: Request, limit: u64) -> bool {
    let mut body = req.into_body();
    let mut seen: u64 = 0;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return false };
        if let Some(data) = frame.data_ref() {
            seen += data.len() as u64;
            if seen > limit {
                return false;
            }
        }
    }
    true
}
