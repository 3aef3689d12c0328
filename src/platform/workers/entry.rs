//! The Worker's entry points: the fetch handler, and the Cron Trigger's
//! scheduled handler that runs balanced services' health checks. One
//! [`Gateway`] lives per isolate, so the configuration cache and what the
//! isolate knows about targets survive between requests.
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::{Context, Env, ScheduleContext, ScheduledEvent, event};

use super::WorkersPlatform;
use super::{convert, settle};
use crate::error::GatewayError;
use crate::gateway::{Gateway, Inbound};
use crate::observe::events::Event;
use crate::pipeline::Locator;
use crate::platform::LogSink;
use crate::upstream::geo::Location;
use crate::upstream::health;

thread_local! {
    static GATEWAY: Gateway = Gateway::new();
}

/// The data centre serving the request (`request.cf.colo`). Reading `cf`
/// makes the runtime build that object, so only metrics and configs whose
/// templates use geo data ask for it.
fn colo(request: &web_sys::Request) -> Option<String> {
    cf_field(request, "colo")
}

fn cf_field(request: &web_sys::Request, name: &str) -> Option<String> {
    let cf = js_sys::Reflect::get(request, &"cf".into()).ok()?;
    js_sys::Reflect::get(&cf, &name.into()).ok()?.as_string()
}

/// Where the caller is (`request.cf`'s continent, country and data
/// centre): read only when a balanced service prefers nearby targets or
/// the config's templates use them, for the same reason.
fn location(request: &web_sys::Request) -> Location {
    Location {
        continent: cf_field(request, "continent"),
        country: cf_field(request, "country"),
        colo: cf_field(request, "colo"),
    }
}

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// The fetch handler, exported as `fetch` (worker-build's generated
/// entrypoint class calls it; `shim.mjs` calls that class's method
/// directly). Not workers-rs's `#[event(fetch)]`: that runs the handler on
/// `wasm-bindgen-futures`, which queues a microtask for its first poll and
/// for every wake-up; `settle::answer` polls in place where it is safe,
/// and answers with the response itself when the handler never waited.
/// The raw request, not `worker::Request`: converting to that reads the
/// request's `cf` object, which the runtime builds on demand at a cost the
/// gateway does not need to pay.
#[wasm_bindgen]
pub fn fetch(request: web_sys::Request, env: Env, ctx: worker::worker_sys::Context) -> JsValue {
    settle::answer(async move {
        match handle(request, env, Context::new(ctx)).await {
            Ok(response) => Ok(response.into()),
            Err(error) => Err(js_sys::Error::new(&error.to_string()).into()),
        }
    })
}

async fn handle(
    request: web_sys::Request,
    env: Env,
    ctx: Context,
) -> worker::Result<web_sys::Response> {
    let gateway = GATEWAY.with(Gateway::clone);
    let platform = WorkersPlatform::new(env, Some(ctx));
    let raw = &request;
    let response = match convert::inbound_request(raw) {
        Ok(inbound) => {
            // workerd does not tell a Worker the connection's address: the
            // core reads it from the header the config trusts.
            let mut inbound = Inbound::new(inbound, None);
            if platform.has_analytics() {
                inbound.colo = colo(raw);
            }
            // Another handle on the same object (`Clone`), not the body-
            // teeing `Request.clone()` of the Fetch API.
            let located: web_sys::Request = Clone::clone(&request);
            inbound.locator = Some(Locator::new(move || location(&located)));
            gateway.handle(&platform, inbound).await
        }
        Err(reason) => gateway.refuse(
            &platform,
            &raw.method(),
            GatewayError::MalformedRequest(reason),
        ),
    };
    match convert::client_response(response) {
        Ok(response) => Ok(response),
        Err(reason) => {
            let fallback = gateway.refuse(&platform, &raw.method(), GatewayError::Internal(reason));
            convert::client_response(fallback).map_err(worker::Error::RustError)
        }
    }
}

/// The Cron Trigger (`[triggers] crons` in wrangler.toml): probe every
/// target of the services with `health.active` and store the results in
/// KV, where isolates read them with their config.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let platform = WorkersPlatform::new(env, None);
    if let Err(error) = health::check_all(&platform).await {
        platform.log(&Event::HealthCheckFailed {
            error: error.to_string(),
        });
    }
}
