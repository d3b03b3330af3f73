//! The lifecycle's metrics (refreshes by outcome, status changes, the due queues, webhook
//! deliveries and their latency). The service counts; the server registers them with
//! its Prometheus registry. Labels are fixed words, never an id.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefreshLabels {
    by: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    from: &'static str,
    to: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: &'static str,
}

fn delivery_histogram() -> Histogram {
    // 1 ms .. ~65 s, from the event's creation to the receiver's answer.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

type DeliveryLatency = Family<OutcomeLabels, Histogram, fn() -> Histogram>;

/// Cheap to clone: every field shares its values.
#[derive(Debug, Clone)]
pub struct LifecycleMetrics {
    refreshes: Family<RefreshLabels, Counter>,
    status_changes: Family<StatusLabels, Counter>,
    queue_due: Family<QueueLabels, Gauge>,
    queue_oldest_overdue: Family<QueueLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    deliveries: Family<OutcomeLabels, Counter>,
    delivery_latency: DeliveryLatency,
    events: Counter,
}

impl Default for LifecycleMetrics {
    fn default() -> Self {
        Self {
            refreshes: Family::default(),
            status_changes: Family::default(),
            queue_due: Family::default(),
            queue_oldest_overdue: Family::default(),
            deliveries: Family::default(),
            delivery_latency: Family::new_with_constructor(delivery_histogram),
            events: Counter::default(),
        }
    }
}

impl LifecycleMetrics {
    /// Adds the metrics to `registry` (the server's, prefixed `tokenwarden`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "refreshes",
            "Token refreshes by who ran them (server, api_key) and outcome",
            self.refreshes.clone(),
        );
        registry.register(
            "connection_status_changes",
            "Connection status changes by old and new status",
            self.status_changes.clone(),
        );
        registry.register(
            "queue_due",
            "Rows due now in a lifecycle queue (connections, webhook_deliveries), counted up to 100000",
            self.queue_due.clone(),
        );
        registry.register(
            "queue_oldest_overdue_seconds",
            "How long the oldest due row of a lifecycle queue has waited",
            self.queue_oldest_overdue.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts by outcome (delivered, retry, gave_up, gone)",
            self.deliveries.clone(),
        );
        registry.register(
            "webhook_delivery_latency_seconds",
            "From an event's creation to its receiver's answer, by outcome",
            self.delivery_latency.clone(),
        );
        registry.register(
            "webhook_events",
            "Webhook events written to the outbox",
            self.events.clone(),
        );
    }

    pub(crate) fn refresh(&self, by: &'static str, outcome: &'static str) {
        self.refreshes
            .get_or_create(&RefreshLabels { by, outcome })
            .inc();
    }

    pub(crate) fn status_change(&self, from: &'static str, to: &'static str) {
        self.status_changes
            .get_or_create(&StatusLabels { from, to })
            .inc();
    }

    pub(crate) fn queue(&self, queue: &'static str, due: u64, oldest_overdue_secs: f64) {
        self.queue_due
            .get_or_create(&QueueLabels { queue })
            .set(i64::try_from(due).unwrap_or(i64::MAX));
        self.queue_oldest_overdue
            .get_or_create(&QueueLabels { queue })
            .set(oldest_overdue_secs);
    }

    pub(crate) fn delivery(&self, outcome: &'static str, latency_secs: f64) {
        self.deliveries
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        self.delivery_latency
            .get_or_create(&OutcomeLabels { outcome })
            .observe(latency_secs);
    }

    pub(crate) fn events(&self, n: usize) {
        self.events.inc_by(n as u64);
    }
}
