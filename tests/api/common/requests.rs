//! Requests to the app's router, in process (`oneshot`), as methods on `TestApp`; every one
//! answers with a `Reply`.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use base64::Engine as _;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use super::app::TestApp;

/// One part of a multipart body: `(name, Some(filename), bytes)` for a file, `None` for text.
pub type Part<'a> = (&'a str, Option<&'a str>, &'a [u8]);

/// What the router answered.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body as JSON, or `Value::Null` when it is not JSON.
    pub json: Value,
    /// The body as text (for `/metrics` and the probes).
    pub text: String,
    /// From sending the request to the end of its body.
    pub elapsed: Duration,
}

impl TestApp {
    /// Any request, through a clone of the router.
    pub async fn send(&self, request: Request<Body>) -> Reply {
        let started = Instant::now();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text: String::from_utf8_lossy(&bytes).into_owned(),
            elapsed: started.elapsed(),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Request::get(path).body(Body::empty()).unwrap()).await
    }

    /// A POST with this app's API key; the builder changes the key or adds headers.
    pub fn post(&self, path: &str) -> Post<'_> {
        Post { app: self, path: path.to_string(), key: Some(self.api_key.clone()), headers: vec![] }
    }

    /// A JSON POST with this app's API key.
    pub async fn post_json(&self, path: &str, body: Value) -> Reply {
        self.post(path).json(body).await
    }

    /// A multipart POST with this app's API key.
    pub async fn post_multipart(&self, path: &str, parts: &[Part<'_>]) -> Reply {
        self.post(path).multipart(parts).await
    }
}

/// A POST being built: `app.post(path).key(..).header(..)`, then `.json`, `.multipart` or `.body`.
pub struct Post<'a> {
    app: &'a TestApp,
    path: String,
    key: Option<String>,
    headers: Vec<(String, String)>,
}

impl Post<'_> {
    /// Another API key than the app's.
    pub fn key(mut self, key: &str) -> Self {
        self.key = Some(key.to_string());
        self
    }

    /// No `x-api-key` header at all.
    pub fn without_key(mut self) -> Self {
        self.key = None;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub async fn json(self, body: Value) -> Reply {
        self.body("application/json", body.to_string()).await
    }

    pub async fn multipart(self, parts: &[Part<'_>]) -> Reply {
        self.multipart_with_boundary("----idverify-test-boundary-7MA4YWxkTrZu0gW", parts).await
    }

    /// A multipart body with this boundary (clients pick a new one for every request).
    pub async fn multipart_with_boundary(self, boundary: &str, parts: &[Part<'_>]) -> Reply {
        let (content_type, body) = multipart(boundary, parts);
        self.body(&content_type, body).await
    }

    /// Any body, under any content type.
    pub async fn body(self, content_type: &str, body: impl Into<Body>) -> Reply {
        let mut request = Request::post(&self.path).header("content-type", content_type);
        if let Some(key) = &self.key {
            request = request.header("x-api-key", key);
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        self.app.send(request.body(body.into()).unwrap()).await
    }
}

/// Standard base64, as clients send images in JSON.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Builds a multipart/form-data body: `(name, Some(filename), bytes)` for files, `None` for text.
fn multipart(boundary: &str, parts: &[Part<'_>]) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    for (name, filename, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
