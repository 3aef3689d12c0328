//! One Workers Analytics Engine data point per request: counts and
//! latencies by route, consumer, status class and cache status, queryable
//! with SQL (see `docs/observability.md` for the schema and examples).
//!
//! The point is derived from the access log record, so the two never
//! disagree; unlike the log it is written for every request (Analytics
//! Engine samples on its own and reports the rate in `_sample_interval`).
//! Never put secrets here: blobs are visible to anyone with the account's
//! analytics access.

use super::events::AccessLog;

/// The dataset columns, in order. Keep `docs/observability.md` in step.
pub const BLOBS: [&str; 10] = [
    "route",
    "service",
    "consumer",
    "status_class",
    "cache",
    "colo",
    "method",
    "problem",
    "rate_limit",
    "auth_method",
];
pub const DOUBLES: [&str; 5] = [
    "status",
    "total_ms",
    "upstream_ms",
    "auth_ms",
    "rate_limit_ms",
];

/// A data point: one index (the route), blobs and doubles in the order of
/// [`BLOBS`] and [`DOUBLES`].
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsPoint {
    pub index: String,
    pub blobs: Vec<String>,
    pub doubles: Vec<f64>,
}

impl MetricsPoint {
    /// The point for a finished request; `colo` is the data centre, when
    /// the runtime says.
    pub fn from_access_log(log: &AccessLog, colo: Option<&str>) -> MetricsPoint {
        let text = |value: Option<&str>| value.unwrap_or("").to_owned();
        let millis = |value: Option<u64>| value.map_or(0.0, |ms| ms as f64);
        let route = text(log.route.as_deref());
        MetricsPoint {
            index: route.clone(),
            blobs: vec![
                route,
                text(log.service.as_deref()),
                text(log.consumer.as_deref()),
                format!("{}xx", log.status / 100),
                text(log.cache),
                text(colo),
                log.method.clone(),
                text(log.problem),
                text(log.rate_limit),
                text(log.auth_method),
            ],
            doubles: vec![
                f64::from(log.status),
                log.timings_ms.total as f64,
                millis(log.timings_ms.upstream),
                millis(log.timings_ms.auth),
                millis(log.timings_ms.rate_limit),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::events::Timings;

    #[test]
    fn a_point_has_one_value_per_documented_column() {
        let log = AccessLog {
            method: "GET".into(),
            route: Some("orders".into()),
            consumer: Some("acme".into()),
            status: 429,
            rate_limit: Some("refused"),
            timings_ms: Timings {
                total: 7,
                rate_limit: Some(5),
                ..Timings::default()
            },
            ..AccessLog::default()
        };
        let point = MetricsPoint::from_access_log(&log, Some("AMS"));
        assert_eq!(point.index, "orders");
        assert_eq!(point.blobs.len(), BLOBS.len());
        assert_eq!(point.doubles.len(), DOUBLES.len());
        assert_eq!(point.blobs[3], "4xx");
        assert_eq!(point.blobs[5], "AMS");
        assert_eq!(point.doubles, vec![429.0, 7.0, 0.0, 0.0, 5.0]);
    }
}
