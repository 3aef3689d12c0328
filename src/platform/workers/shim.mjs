// The Worker's entry module (wrangler.toml's `main`, copied to
// build/worker/shim.mjs after worker-build has written build/index.js).
//
// worker-build's own default export is its entrypoint class behind a
// Proxy that, on every request, constructs the class and wraps each method
// it hands out in a Proxy of its own, so that an object that held wasm
// state can be rebuilt after the module traps. The gateway's entry points
// hold no such state: the module itself is re-instantiated by the
// wasm-bindgen glue on the first call after a trap, whatever calls it. So
// the fetch and scheduled handlers are called directly, which saves a
// routed request about 10 µs of the isolate's CPU (docs/performance.md).
// Everything else is exported as worker-build made it, except the
// rate-limit Durable Object class: the runtime offers RPC only to classes
// that extend its `DurableObject`, so the class exported here does, and
// hands every call to the one worker-build made (its trap recovery
// included).
import { DurableObject } from "cloudflare:workers";
import Generated, { RateLimiter as Limiter } from "../index.js";

export * from "../index.js";

export class RateLimiter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.limiter = new Limiter(ctx, env);
  }
  // RPC: a batch of limit calls (JSON); the replies (JSON).
  limit(calls) {
    return this.limiter.limit(calls);
  }
  fetch(request) {
    return this.limiter.fetch(request);
  }
  alarm() {
    return this.limiter.alarm();
  }
}

const { fetch, scheduled } = Generated.prototype;

export default {
  fetch(request, env, ctx) {
    return fetch.call({ env, ctx }, request);
  },
  scheduled(event, env, ctx) {
    return scheduled.call({ env, ctx }, event);
  },
};
