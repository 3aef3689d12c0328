//! The executor of a request's handler future.
//!
//! A generic executor queues every wake-up as a microtask and polls from
//! there; on workerd each queued microtask carries the request's async
//! context, and two of them per proxied request (the first poll and the
//! one after the upstream answers) cost more than the handler's own Rust.
//! This one polls in place whenever that is safe:
//!
//! - when the task starts (its entry point is called from the top of the
//!   JavaScript stack, nothing else of the gateway's is running);
//! - when a wake-up comes from a promise settling ([`at_top`]: the
//!   runtime runs promise reactions on an empty stack, so no borrow of
//!   the gateway's is held);
//! - when the task wakes itself while being polled (it is polled again
//!   before the poll returns).
//!
//! Every other wake-up (from inside another task's poll, or from code that
//! may be running inside one) is handed to `defer`, which polls later from
//! a fresh stack, as a generic executor would. So no task is ever polled
//! inside another's poll, and a wake-up never runs the woken task where
//! the waker's caller holds state.
//!
//! Platform-neutral: the Workers adapter supplies `defer`; the native
//! tests drive it by hand.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

type LocalFuture = Pin<Box<dyn Future<Output = ()>>>;

thread_local! {
    /// A task of this executor is being polled.
    static POLLING: Cell<bool> = const { Cell::new(false) };
    /// A promise reaction is waking tasks from the top of the stack.
    static AT_TOP: Cell<bool> = const { Cell::new(false) };
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Idle,
    Polling,
    /// Woken while being polled: poll once more before returning.
    PollingWoken,
    Done,
}

/// One request's handler future and how far it has got.
pub struct Task {
    future: RefCell<Option<LocalFuture>>,
    state: Cell<State>,
    defer: fn(Arc<Task>),
}

// SAFETY: wasm32 isolates are single-threaded and the native tests use a
// task on one thread only; `Arc` is needed only because `std::task::Wake`
// is written for threaded executors. A task never leaves its thread.
unsafe impl Send for Task {}
unsafe impl Sync for Task {}

impl Task {
    /// Start `future`: it is polled at once, in place (the caller is the
    /// entry point, at the top of the stack). `defer` polls a task later,
    /// from a fresh stack, when a wake-up cannot poll in place.
    pub fn start(future: impl Future<Output = ()> + 'static, defer: fn(Arc<Task>)) -> Arc<Task> {
        let task = Arc::new(Task {
            future: RefCell::new(Some(Box::pin(future))),
            state: Cell::new(State::Idle),
            defer,
        });
        Arc::clone(&task).run();
        task
    }

    /// Whether the future has completed.
    pub fn is_done(&self) -> bool {
        self.state.get() == State::Done
    }

    /// Poll until the future is pending without a wake-up, or done. For
    /// `defer`'s later poll, and for the in-place cases above.
    pub fn run(self: Arc<Self>) {
        if self.state.get() != State::Idle {
            return;
        }
        let waker = Waker::from(Arc::clone(&self));
        let mut context = Context::from_waker(&waker);
        let outer = POLLING.with(|polling| polling.replace(true));
        loop {
            self.state.set(State::Polling);
            let polled = match self.future.borrow_mut().as_mut() {
                Some(future) => future.as_mut().poll(&mut context),
                None => Poll::Ready(()),
            };
            if polled.is_ready() {
                self.state.set(State::Done);
                // Dropped outside the borrow: a future's destructor may wake.
                let finished = self.future.borrow_mut().take();
                drop(finished);
                break;
            }
            if self.state.get() == State::Polling {
                self.state.set(State::Idle);
                break;
            }
        }
        POLLING.with(|polling| polling.set(outer));
    }
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        match self.state.get() {
            State::Done | State::PollingWoken => {}
            State::Polling => self.state.set(State::PollingWoken),
            State::Idle => {
                let in_place = AT_TOP.with(Cell::get) && !POLLING.with(Cell::get);
                if in_place {
                    Arc::clone(self).run();
                } else {
                    (self.defer)(Arc::clone(self));
                }
            }
        }
    }
}

/// Run `settle` (which wakes the tasks waiting on a promise) as a promise
/// reaction on an empty stack: tasks it wakes are polled in place.
pub fn at_top<T>(settle: impl FnOnce() -> T) -> T {
    let outer = AT_TOP.with(|top| top.replace(true));
    let result = settle();
    AT_TOP.with(|top| top.set(outer));
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    thread_local! {
        static DEFERRED: RefCell<Vec<Arc<Task>>> = const { RefCell::new(Vec::new()) };
    }

    fn defer(task: Arc<Task>) {
        DEFERRED.with(|deferred| deferred.borrow_mut().push(task));
    }

    fn run_deferred() -> usize {
        let tasks = DEFERRED.with(|deferred| std::mem::take(&mut *deferred.borrow_mut()));
        let count = tasks.len();
        for task in tasks {
            task.run();
        }
        count
    }

    /// A future pending until `open` is set, keeping its latest waker.
    #[derive(Default)]
    struct Gate {
        open: Cell<bool>,
        waker: RefCell<Option<Waker>>,
        polls: Cell<u32>,
    }

    impl Gate {
        fn wait(self: &Rc<Self>) -> impl Future<Output = ()> + 'static {
            let gate = Rc::clone(self);
            std::future::poll_fn(move |context| {
                gate.polls.set(gate.polls.get() + 1);
                if gate.open.get() {
                    Poll::Ready(())
                } else {
                    *gate.waker.borrow_mut() = Some(context.waker().clone());
                    Poll::Pending
                }
            })
        }

        fn open(&self) {
            self.open.set(true);
            if let Some(waker) = self.waker.borrow_mut().take() {
                waker.wake();
            }
        }
    }

    #[test]
    fn a_future_that_never_waits_is_done_when_started() {
        let ran = Rc::new(Cell::new(false));
        let seen = Rc::clone(&ran);
        let task = Task::start(async move { seen.set(true) }, defer);
        assert!(task.is_done());
        assert!(ran.get());
        assert_eq!(run_deferred(), 0);
    }

    #[test]
    fn a_promise_settling_polls_the_task_in_place() {
        let gate = Rc::new(Gate::default());
        let task = Task::start(gate.wait(), defer);
        assert!(!task.is_done());
        at_top(|| gate.open());
        assert!(task.is_done(), "polled in the reaction, not deferred");
        assert_eq!(run_deferred(), 0);
    }

    #[test]
    fn a_wake_up_from_elsewhere_is_deferred_to_a_fresh_stack() {
        let gate = Rc::new(Gate::default());
        let task = Task::start(gate.wait(), defer);
        gate.open();
        assert!(!task.is_done(), "not polled inside the waker's caller");
        assert_eq!(run_deferred(), 1);
        assert!(task.is_done());
    }

    #[test]
    fn a_task_woken_by_another_tasks_poll_is_deferred_even_at_the_top() {
        let first = Rc::new(Gate::default());
        let second = Rc::new(Gate::default());
        let waiting = Task::start(second.wait(), defer);
        let opener = Rc::clone(&second);
        let waiter = first.wait();
        let waking = Task::start(
            async move {
                waiter.await;
                // Inside this task's poll: the other task must not run here.
                opener.open();
            },
            defer,
        );
        at_top(|| first.open());
        assert!(waking.is_done());
        assert!(!waiting.is_done());
        assert_eq!(run_deferred(), 1);
        assert!(waiting.is_done());
    }

    #[test]
    fn a_task_that_wakes_itself_is_polled_again_before_the_poll_returns() {
        let mut yielded = false;
        let polls = Rc::new(Cell::new(0));
        let counted = Rc::clone(&polls);
        let task = Task::start(
            std::future::poll_fn(move |context| {
                counted.set(counted.get() + 1);
                if yielded {
                    Poll::Ready(())
                } else {
                    yielded = true;
                    context.waker().wake_by_ref();
                    Poll::Pending
                }
            }),
            defer,
        );
        assert!(task.is_done());
        assert_eq!(polls.get(), 2);
        assert_eq!(run_deferred(), 0);
    }

    #[test]
    fn wake_ups_after_completion_and_stale_deferrals_do_nothing() {
        let gate = Rc::new(Gate::default());
        let task = Task::start(gate.wait(), defer);
        let waker = Waker::from(Arc::clone(&task));
        // Deferred twice (two wake-ups from elsewhere), then done.
        waker.wake_by_ref();
        waker.wake_by_ref();
        gate.open.set(true);
        assert_eq!(run_deferred(), 2);
        assert!(task.is_done());
        at_top(|| waker.wake_by_ref());
        assert_eq!(run_deferred(), 0);
        assert_eq!(gate.polls.get(), 2, "one poll at the start, one to finish");
    }
}
