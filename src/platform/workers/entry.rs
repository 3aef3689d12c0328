//! The Worker's entry points. One [`Gateway`] lives per isolate, so the
//! configuration cache survives between requests.

use std::net::IpAddr;

use worker::{Context, Env, event};

use super::WorkersPlatform;
use super::convert;
use crate::error::GatewayError;
use crate::gateway::{Gateway, Inbound};

thread_local! {
    static GATEWAY: std::rc::Rc<Gateway> = std::rc::Rc::new(Gateway::new());
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
    _ctx: Context,
) -> worker::Result<web_sys::Response> {
    let gateway = GATEWAY.with(std::rc::Rc::clone);
    let platform = WorkersPlatform::new(env);
    let raw = &request;
    let response = match convert::inbound_request(raw) {
        Ok(inbound) => {
            let client_ip = inbound
                .headers()
                .get("cf-connecting-ip")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<IpAddr>().ok());
            gateway
                .handle(
                    &platform,
                    Inbound {
                        request: inbound,
                        client_ip,
                    },
                )
                .await
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
