//! The Worker's entry points. One [`Gateway`] lives per isolate, so the
//! configuration cache survives between requests.

use worker::{Context, Env, event};

use super::WorkersPlatform;
use super::convert;
use crate::error::GatewayError;
use crate::gateway::{Gateway, Inbound};

thread_local! {
    static GATEWAY: Gateway = Gateway::new();
}

/// The data centre serving the request (`request.cf.colo`). Reading `cf`
/// makes the runtime build that object, so only metrics ask for it.
fn colo(request: &web_sys::Request) -> Option<String> {
    let cf = js_sys::Reflect::get(request, &"cf".into()).ok()?;
    js_sys::Reflect::get(&cf, &"colo".into()).ok()?.as_string()
}

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

// The raw request, not `worker::Request`: converting to that reads the
// request's `cf` object, which the runtime builds on demand at a cost the
// gateway does not need to pay.
#[event(fetch)]
async fn fetch(
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
