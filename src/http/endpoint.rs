//! Every route, named once: its path, its price and its metric label. The router is built from
//! [`Endpoint::ALL`]; the OpenAPI paths live on the handlers' `#[utoipa::path]` attributes (which
//! take only literals), and a test below keeps the two lists equal.

use crate::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Verify,
    DocumentScan,
    FaceDetect,
    FaceCompare,
    Uploads,
    Info,
    Healthz,
    Readyz,
    Metrics,
    OpenApi,
}

/// The label of a request that matched no route (keeps the metric label set closed).
pub const UNMATCHED_LABEL: &str = "unmatched";

impl Endpoint {
    pub const ALL: [Endpoint; 10] = [
        Endpoint::Verify,
        Endpoint::DocumentScan,
        Endpoint::FaceDetect,
        Endpoint::FaceCompare,
        Endpoint::Uploads,
        Endpoint::Info,
        Endpoint::Healthz,
        Endpoint::Readyz,
        Endpoint::Metrics,
        Endpoint::OpenApi,
    ];

    pub const fn path(self) -> &'static str {
        match self {
            Endpoint::Verify => "/v1/identity/verify",
            Endpoint::DocumentScan => "/v1/document/scan",
            Endpoint::FaceDetect => "/v1/face/detect",
            Endpoint::FaceCompare => "/v1/face/compare",
            Endpoint::Uploads => "/v1/uploads",
            Endpoint::Info => "/v1/info",
            Endpoint::Healthz => "/healthz",
            Endpoint::Readyz => "/readyz",
            Endpoint::Metrics => "/metrics",
            Endpoint::OpenApi => "/openapi.json",
        }
    }

    /// The endpoint routed at exactly `path`, if any.
    pub fn from_path(path: &str) -> Option<Endpoint> {
        Endpoint::ALL.into_iter().find(|e| e.path() == path)
    }

    /// The `route` label of its request metrics: the route template.
    pub const fn metric_label(self) -> &'static str {
        self.path()
    }

    /// The metric label for a request path: its endpoint's, or [`UNMATCHED_LABEL`].
    pub fn label_for_path(path: &str) -> &'static str {
        Endpoint::from_path(path).map_or(UNMATCHED_LABEL, Endpoint::metric_label)
    }

    /// Tokens one call costs. `Some` exactly for the tenant endpoints (API key, rate limit,
    /// charge); `None` for the public ones, which nobody pays for.
    pub fn price(self, config: &Config) -> Option<i64> {
        match self {
            Endpoint::Verify => Some(config.price_verify),
            Endpoint::DocumentScan => Some(config.price_document_scan),
            Endpoint::FaceDetect => Some(config.price_face_detect),
            Endpoint::FaceCompare => Some(config.price_face_compare),
            Endpoint::Uploads => Some(config.price_uploads),
            // Authenticated and rate-limited like the others, but free.
            Endpoint::Info => Some(0),
            Endpoint::Healthz | Endpoint::Readyz | Endpoint::Metrics | Endpoint::OpenApi => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_endpoint_is_documented_and_every_documented_path_is_an_endpoint() {
        let doc = serde_json::to_value(crate::http::openapi::document()).unwrap();
        let documented: BTreeSet<&str> =
            doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();
        let routed: BTreeSet<&str> = Endpoint::ALL.iter().map(|e| e.path()).collect();
        assert_eq!(documented, routed);
    }

    #[test]
    fn exactly_the_priced_endpoints_require_an_api_key_in_the_document() {
        let doc = serde_json::to_value(crate::http::openapi::document()).unwrap();
        let config = Config::load_from(&Default::default(), Vec::<(String, String)>::new()).unwrap();
        for endpoint in Endpoint::ALL {
            let operations = doc["paths"][endpoint.path()].as_object().unwrap();
            for (method, operation) in operations {
                let secured = operation.get("security").is_some();
                assert_eq!(secured, endpoint.price(&config).is_some(), "{method} {}", endpoint.path());
            }
        }
    }

    #[test]
    fn paths_are_unique_and_labels_are_bounded() {
        let unique: BTreeSet<&str> = Endpoint::ALL.iter().map(|e| e.path()).collect();
        assert_eq!(unique.len(), Endpoint::ALL.len());
        assert_eq!(Endpoint::label_for_path("/v1/face/detect"), "/v1/face/detect");
        assert_eq!(Endpoint::label_for_path("/v1/face/detect/"), UNMATCHED_LABEL);
        assert_eq!(Endpoint::label_for_path("/nope"), UNMATCHED_LABEL);
    }

    #[test]
    fn an_unknown_path_has_no_price() {
        assert_eq!(Endpoint::from_path("/v1/unknown"), None);
    }
}
