//! Prometheus metrics: requests by route and status with latency histograms, and the
//! database pool's state, read at scrape time.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pool_connections: IntGauge,
    pool_idle: IntGauge,
    pass_downloads: IntCounterVec,
    outbox_depth: prometheus::IntGaugeVec,
    pushes: IntCounterVec,
    webhooks: IntCounterVec,
    change_to_push: prometheus::Histogram,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("passfold".into()), None)
            .expect("a constant prefix is valid");
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests answered, by route and status",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to answer HTTP requests, by route",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["method", "route"],
        )
        .expect("valid metric");
        let pool_connections = IntGauge::new(
            "db_pool_connections",
            "Open database connections in the pool",
        )
        .expect("valid metric");
        let pool_idle = IntGauge::new(
            "db_pool_idle_connections",
            "Idle database connections in the pool",
        )
        .expect("valid metric");
        let pass_downloads = IntCounterVec::new(
            Opts::new(
                "pass_downloads_total",
                "Pass downloads by how they were answered: cache, built or not_modified",
            ),
            &["answer"],
        )
        .expect("valid metric");
        let outbox_depth = prometheus::IntGaugeVec::new(
            Opts::new(
                "outbox_depth",
                "Deliveries waiting in the outbox, by channel",
            ),
            &["channel"],
        )
        .expect("valid metric");
        let pushes = IntCounterVec::new(
            Opts::new(
                "apns_pushes_total",
                "APNs pushes by result: accepted, unregistered, bad_device_token, retry, refused",
            ),
            &["result"],
        )
        .expect("valid metric");
        let webhooks = IntCounterVec::new(
            Opts::new(
                "webhook_deliveries_total",
                "Webhook delivery attempts by result: delivered, failed",
            ),
            &["result"],
        )
        .expect("valid metric");
        let change_to_push = prometheus::Histogram::with_opts(
            HistogramOpts::new(
                "change_to_push_seconds",
                "Time from a pass change to its pushes being accepted",
            )
            .buckets(vec![
                0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
        )
        .expect("valid metric");
        for c in [
            Box::new(outbox_depth.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(pushes.clone()),
            Box::new(webhooks.clone()),
            Box::new(change_to_push.clone()),
            Box::new(pass_downloads.clone()),
            Box::new(requests.clone()),
            Box::new(latency.clone()),
            Box::new(pool_connections.clone()),
            Box::new(pool_idle.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Self {
            registry,
            requests,
            latency,
            pool_connections,
            pool_idle,
            pass_downloads,
            outbox_depth,
            pushes,
            webhooks,
            change_to_push,
        }
    }

    pub fn set_outbox_depth(&self, channel: &str, depth: i64) {
        self.outbox_depth.with_label_values(&[channel]).set(depth);
    }

    pub fn webhook_attempt(&self, delivered: bool) {
        let result = if delivered { "delivered" } else { "failed" };
        self.webhooks.with_label_values(&[result]).inc();
    }

    pub fn push(&self, result: &str) {
        self.pushes.with_label_values(&[result]).inc();
    }

    pub fn change_pushed(&self, seconds: f64) {
        self.change_to_push.observe(seconds);
    }

    pub fn pass_download(&self, answer: &str) {
        self.pass_downloads.with_label_values(&[answer]).inc();
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// `method` is mapped to a fixed set first: a client may send any token as the method,
    /// and each distinct label value would be a new series kept forever.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    pub fn render(&self, pool: &crate::db::DbPool) -> String {
        let state = pool.state();
        self.pool_connections.set(i64::from(state.connections));
        self.pool_idle.set(i64::from(state.idle_connections));
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The label of a request method: the methods the service answers, or `other`.
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_methods_share_one_series() {
        let m = Metrics::new();
        for i in 0..50 {
            m.observe_request(&format!("FOO{i}"), "unmatched", 404, 0.001);
        }
        m.observe_request("GET", "/healthz", 200, 0.001);
        let families = m.registry().gather();
        let requests = families
            .iter()
            .find(|f| f.name() == "passfold_http_requests_total")
            .map(|f| f.get_metric().len());
        assert_eq!(requests, Some(2));
    }
}
