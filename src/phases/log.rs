//! Phase "log": one structured access-log event per request.
//!
//! The record holds the path without its query string, the route and
//! service, the caller's auth method, consumer and key id, both statuses,
//! the duration and, for errors, the problem type and the operator-facing
//! reason. It never holds headers, credentials or bodies.

use http::Method;

use crate::auth::{AuthMethod, Identity};
use crate::error::GatewayError;
use crate::events::{AccessLog, Event};
use crate::platform::{LogSink, UnixMillis};

/// The access log of one request, filled in as the phases run.
#[derive(Debug)]
pub struct RequestLog {
    started: UnixMillis,
    record: AccessLog,
}

impl RequestLog {
    pub fn start(
        started: UnixMillis,
        request_id: &str,
        method: &Method,
        host: Option<String>,
        path: &str,
    ) -> RequestLog {
        RequestLog {
            started,
            record: AccessLog {
                request_id: request_id.to_owned(),
                method: method.as_str().to_owned(),
                host,
                path: path.to_owned(),
                ..AccessLog::default()
            },
        }
    }

    pub fn routed(&mut self, route: &str, service: &str) {
        self.record.route = Some(route.to_owned());
        self.record.service = Some(service.to_owned());
    }

    /// Who called (never the credential itself).
    pub fn identity(&mut self, identity: &Identity) {
        self.record.auth_method = identity.method.map(AuthMethod::as_str);
        self.record.consumer = identity.consumer.clone();
        self.record.key_id = identity.key_id.clone();
    }

    pub fn upstream_status(&mut self, status: u16) {
        self.record.upstream_status = Some(status);
    }

    pub fn failed(&mut self, error: &GatewayError) {
        self.record.problem = Some(error.problem_type().slug);
        self.record.error = Some(error.to_string());
    }

    /// Emit the event.
    pub fn finish(mut self, status: u16, now: UnixMillis, sink: &impl LogSink) {
        self.record.status = status;
        self.record.duration_ms =
            u64::try_from(now.since(self.started).as_millis()).unwrap_or(u64::MAX);
        sink.log(&Event::Request(self.record));
    }
}
