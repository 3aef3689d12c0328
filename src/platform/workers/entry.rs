//! The Worker's entry points. One [`Gateway`] lives per isolate, so the
//! configuration cache survives between requests.

use std::net::IpAddr;

use worker::{Context, Env, event};

use super::WorkersPlatform;
use super::convert;
use crate::error::GatewayError;
use crate::gateway::{Gateway, Geo, Inbound};

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

/// `request.cf`'s data centre, country and continent.
fn geo(request: &web_sys::Request) -> Geo {
    Geo {
        colo: cf_field(request, "colo"),
        country: cf_field(request, "country"),
        continent: cf_field(request, "continent"),
    }
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
            let client_ip = inbound
                .headers()
                .get("cf-connecting-ip")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<IpAddr>().ok());
            let mut inbound = Inbound::new(inbound, client_ip);
            if platform.has_analytics() {
                inbound.colo = colo(raw);
            }
            // The handle, not `Request.clone()` (which would tee the body).
            let for_geo = <web_sys::Request as Clone>::clone(&request);
            let inbound = inbound.with_geo(move || geo(&for_geo));
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
