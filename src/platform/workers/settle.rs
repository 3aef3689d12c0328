//! JavaScript promises as futures, and the fetch handler's future as the
//! runtime's answer, on the gateway's own executor (`platform::task`).
//!
//! A promise awaited here costs one `then` in JavaScript and no closure
//! allocated on the wasm side: every settlement goes through one callback
//! made once per instance, which records the result in a slot and wakes
//! the waiting task from the top of the stack, where `task` may poll it in
//! place rather than queueing a microtask. A JavaScript helper that can
//! report its outcome itself (the upstream fetch) is handed a slot and
//! that callback instead (`settle_by`), which saves the request a promise
//! and its reaction.

use std::cell::{OnceCell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::{Closure, wasm_bindgen};
use wasm_bindgen::{JsCast, JsValue};

use crate::platform::slots::Slots;
use crate::platform::task::{self, Task};

#[wasm_bindgen(inline_js = r#"
// The instance's settle callback as JavaScript calls it. A trap in the
// task it polls (the glue has already marked the module for
// re-instantiation) is reported as uncaught, through the global "error"
// event as a trap in a microtask would be, rather than lost as the
// rejection of a promise no one holds.
export function portico_reporter(settle) {
  return (slot, ok, value) => {
    try {
      settle(slot, ok, value);
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
    }
  };
}
// The callback is this instance's, passed in now: a promise that
// outlives a replaced instance must not settle into the new one's slots.
export function portico_await(promise, slot, settled) {
  promise.then((value) => settled(slot, true, value), (error) => settled(slot, false, error));
}
export function portico_deferred() {
  let resolve, reject;
  const promise = new Promise((yes, no) => {
    resolve = yes;
    reject = no;
  });
  return [promise, resolve, reject];
}
"#)]
extern "C" {
    fn portico_reporter(settle: &JsValue) -> JsValue;
    fn portico_await(promise: &Promise, slot: u32, settled: &JsValue);
    fn portico_deferred() -> js_sys::Array;
}

type Outcome = Result<JsValue, JsValue>;

thread_local! {
    static SLOTS: RefCell<Slots<Outcome>> = RefCell::new(Slots::default());
    /// The instance's settle callback, `(slot, ok, value)`, once made: it
    /// lives as long as the instance, and every settlement goes through it.
    static CALLBACK: OnceCell<JsValue> = const { OnceCell::new() };
}

/// Run `f` with the instance's settle callback (made on first use).
fn with_callback<R>(f: impl FnOnce(&JsValue) -> R) -> R {
    CALLBACK.with(|callback| {
        f(callback.get_or_init(|| {
            let settle = Closure::<dyn FnMut(u32, bool, JsValue)>::new(on_settled);
            portico_reporter(&settle.into_js_value())
        }))
    })
}

fn on_settled(slot: u32, ok: bool, value: JsValue) {
    let outcome = if ok { Ok(value) } else { Err(value) };
    // Woken outside the borrow: the task may be polled in place.
    let waker = SLOTS.with(|slots| slots.borrow_mut().settle(slot, outcome));
    if let Some(waker) = waker {
        task::at_top(|| waker.wake());
    }
}

/// A promise's outcome: `Ok` with its value, or `Err` with the rejection.
pub struct Settled {
    /// None once the outcome has been taken.
    slot: Option<u32>,
}

/// Await `promise`.
pub fn settle(promise: Promise) -> Settled {
    let slot = SLOTS.with(|slots| slots.borrow_mut().take());
    with_callback(|settled| portico_await(&promise, slot, settled));
    Settled { slot: Some(slot) }
}

/// Await an outcome that JavaScript reports itself, without a promise of
/// its own in between: `start` is given a slot and the settle callback,
/// and arranges for `callback(slot, ok, value)` to be called once. If
/// `start` fails, that failure is the outcome.
pub fn settle_by(start: impl FnOnce(u32, &JsValue) -> Result<(), JsValue>) -> Settled {
    let slot = SLOTS.with(|slots| slots.borrow_mut().take());
    if let Err(error) = with_callback(|callback| start(slot, callback)) {
        // Nothing will report: the slot is settled here (no task waits on
        // it yet, so there is no one to wake).
        let _none = SLOTS.with(|slots| slots.borrow_mut().settle(slot, Err(error)));
    }
    Settled { slot: Some(slot) }
}

impl Future for Settled {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Outcome> {
        let Some(slot) = self.slot else {
            return Poll::Ready(Err(JsValue::from_str("promise awaited again")));
        };
        let polled = SLOTS.with(|slots| slots.borrow_mut().poll(slot, context.waker()));
        let Poll::Ready(outcome) = polled else {
            return Poll::Pending;
        };
        self.slot = None;
        Poll::Ready(outcome.unwrap_or_else(|| Err(JsValue::from_str("promise slot lost"))))
    }
}

impl Drop for Settled {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            SLOTS.with(|slots| slots.borrow_mut().abandon(slot));
        }
    }
}

/// Polls a task later, from a microtask of its own.
fn defer(task: Arc<Task>) {
    wasm_bindgen_futures::spawn_local(async move { task.run() });
}

enum Answer {
    Running,
    Ready(Result<JsValue, JsValue>),
    Later { resolve: Function, reject: Function },
    Given,
}

/// Run a handler's future and answer the runtime: its value itself when
/// it completes in its first poll, else a promise of it.
pub fn answer(future: impl Future<Output = Result<JsValue, JsValue>> + 'static) -> JsValue {
    let answer = Rc::new(RefCell::new(Answer::Running));
    let delivered = Rc::clone(&answer);
    Task::start(
        async move {
            let outcome = future.await;
            let waiting = std::mem::replace(&mut *delivered.borrow_mut(), Answer::Given);
            match waiting {
                Answer::Later { resolve, reject } => {
                    let _ = match outcome {
                        Ok(value) => resolve.call1(&JsValue::UNDEFINED, &value),
                        Err(error) => reject.call1(&JsValue::UNDEFINED, &error),
                    };
                }
                _ => *delivered.borrow_mut() = Answer::Ready(outcome),
            }
        },
        defer,
    );
    let done = std::mem::replace(&mut *answer.borrow_mut(), Answer::Given);
    match done {
        Answer::Ready(Ok(value)) => value,
        Answer::Ready(Err(error)) => Promise::reject(&error).into(),
        _ => {
            let parts = portico_deferred();
            let resolve: Function = parts.get(1).unchecked_into();
            let reject: Function = parts.get(2).unchecked_into();
            *answer.borrow_mut() = Answer::Later { resolve, reject };
            parts.get(0)
        }
    }
}
