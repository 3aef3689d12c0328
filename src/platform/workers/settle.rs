//! JavaScript promises as futures, and the fetch handler's future as the
//! runtime's answer, on the gateway's own executor (`platform::task`).
//!
//! A promise awaited here costs one `then` in JavaScript and no closure
//! allocated on the wasm side: every settlement goes through one callback
//! made once per instance, which records the result in a slot and wakes
//! the waiting task from the top of the stack, where `task` may poll it in
//! place rather than queueing a microtask.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::{Closure, wasm_bindgen};
use wasm_bindgen::{JsCast, JsValue};

use crate::platform::task::{self, Task};

#[wasm_bindgen(inline_js = r#"
let settle;
export function portico_settle_with(callback) {
  settle = callback;
}
// The callback of this instance, taken now: a promise that outlives a
// replaced instance must not settle into the new one's slots.
export function portico_await(promise, slot) {
  const settled = settle;
  const report = (ok, value) => {
    try {
      settled(slot, ok, value);
    } catch (error) {
      // A trap in the task polled here (the glue has already marked the
      // module for re-instantiation): reported as uncaught, through the
      // global "error" event as a trap in a microtask would be, rather
      // than lost as the rejection of a promise no one holds.
      queueMicrotask(() => {
        throw error;
      });
    }
  };
  promise.then((value) => report(true, value), (error) => report(false, error));
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
    fn portico_settle_with(callback: &JsValue);
    fn portico_await(promise: &Promise, slot: u32);
    fn portico_deferred() -> js_sys::Array;
}

enum Slot {
    Free,
    Waiting(Option<Waker>),
    Settled(Result<JsValue, JsValue>),
    /// Its future was dropped first: freed when the promise settles.
    Abandoned,
}

thread_local! {
    static SLOTS: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
    static FREE: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    static INSTALLED: Cell<bool> = const { Cell::new(false) };
}

fn install() {
    if INSTALLED.with(|installed| installed.replace(true)) {
        return;
    }
    let callback = Closure::<dyn FnMut(u32, bool, JsValue)>::new(on_settled);
    // Lives as long as the instance: every settlement goes through it.
    portico_settle_with(&callback.into_js_value());
}

fn on_settled(slot: u32, ok: bool, value: JsValue) {
    let waker = SLOTS.with(|slots| {
        let mut slots = slots.borrow_mut();
        let entry = slots.get_mut(slot as usize)?;
        match std::mem::replace(entry, Slot::Free) {
            Slot::Waiting(waker) => {
                *entry = Slot::Settled(if ok { Ok(value) } else { Err(value) });
                waker
            }
            Slot::Abandoned => {
                FREE.with(|free| free.borrow_mut().push(slot));
                None
            }
            other => {
                *entry = other;
                None
            }
        }
    });
    if let Some(waker) = waker {
        task::at_top(|| waker.wake());
    }
}

fn take_slot() -> u32 {
    if let Some(slot) = FREE.with(|free| free.borrow_mut().pop()) {
        SLOTS.with(|slots| {
            if let Some(entry) = slots.borrow_mut().get_mut(slot as usize) {
                *entry = Slot::Waiting(None);
            }
        });
        return slot;
    }
    SLOTS.with(|slots| {
        let mut slots = slots.borrow_mut();
        slots.push(Slot::Waiting(None));
        u32::try_from(slots.len() - 1).unwrap_or(u32::MAX)
    })
}

/// A promise's outcome: `Ok` with its value, or `Err` with the rejection.
pub struct Settled {
    /// None once the outcome has been taken.
    slot: Option<u32>,
}

/// Await `promise`.
pub fn settle(promise: Promise) -> Settled {
    install();
    let slot = take_slot();
    portico_await(&promise, slot);
    Settled { slot: Some(slot) }
}

impl Future for Settled {
    type Output = Result<JsValue, JsValue>;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(slot) = self.slot else {
            return Poll::Ready(Err(JsValue::from_str("promise awaited again")));
        };
        let outcome = SLOTS.with(|slots| {
            let mut slots = slots.borrow_mut();
            let entry = slots.get_mut(slot as usize)?;
            match entry {
                Slot::Waiting(waker) => {
                    if !waker.as_ref().is_some_and(|w| w.will_wake(context.waker())) {
                        *waker = Some(context.waker().clone());
                    }
                    None
                }
                Slot::Settled(_) => match std::mem::replace(entry, Slot::Free) {
                    Slot::Settled(outcome) => Some(outcome),
                    _ => None,
                },
                Slot::Free | Slot::Abandoned => Some(Err(JsValue::from_str("promise slot lost"))),
            }
        });
        match outcome {
            Some(outcome) => {
                self.slot = None;
                FREE.with(|free| free.borrow_mut().push(slot));
                Poll::Ready(outcome)
            }
            None => Poll::Pending,
        }
    }
}

impl Drop for Settled {
    fn drop(&mut self) {
        let Some(slot) = self.slot else {
            return;
        };
        let freed = SLOTS.with(|slots| {
            let mut slots = slots.borrow_mut();
            let Some(entry) = slots.get_mut(slot as usize) else {
                return false;
            };
            match entry {
                // The promise settles later: the slot is freed then.
                Slot::Waiting(_) => {
                    *entry = Slot::Abandoned;
                    false
                }
                Slot::Settled(_) => {
                    *entry = Slot::Free;
                    true
                }
                Slot::Free | Slot::Abandoned => false,
            }
        });
        if freed {
            FREE.with(|free| free.borrow_mut().push(slot));
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
