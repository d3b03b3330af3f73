//! Prometheus metrics: request counts and latencies by route and status. Labels are the
//! route *template* (`/v1/api-keys/{id}`), never the concrete path, so no id or secret
//! can become a label and cardinality stays fixed.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

/// A proxied request's outcome: the upstream status class or the error code.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProxyLabels {
    outcome: &'static str,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    proxy_requests: Family<ProxyLabels, Counter>,
    proxy_truncated: Counter,
}

fn latency_histogram() -> Histogram {
    // 50 µs .. ~1.6 s
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

impl Metrics {
    pub fn new(lifecycle: &tokenwarden_service::LifecycleMetrics) -> Self {
        let mut registry = Registry::with_prefix("tokenwarden");
        lifecycle.register(&mut registry);
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_requests",
            "HTTP requests by method, route template and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method and route template",
            latency.clone(),
        );
        let proxy_requests = Family::<ProxyLabels, Counter>::default();
        let proxy_truncated = Counter::default();
        registry.register(
            "proxy_requests",
            "Proxied requests by outcome: the upstream status class (2xx, ...) or the error code",
            proxy_requests.clone(),
        );
        registry.register(
            "proxy_responses_truncated",
            "Proxied responses cut off because they grew past the body limit",
            proxy_truncated.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            proxy_requests,
            proxy_truncated,
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts one proxied request; `outcome` is a status class or an error code, never
    /// an id or a path.
    pub fn proxy_outcome(&self, outcome: &'static str) {
        self.proxy_requests
            .get_or_create(&ProxyLabels { outcome })
            .inc();
    }

    pub fn proxy_truncated(&self) {
        self.proxy_truncated.inc();
    }

    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(seconds);
    }
}

/// Middleware that records every request.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let response = next.run(req).await;
    metrics.observe(
        &method,
        &route,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}
