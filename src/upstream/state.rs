//! What one isolate knows about its balanced services' targets: requests
//! in flight, round-robin scores, passive health, retry budgets, and the
//! random numbers the algorithms draw. It lives in the pipeline's
//! per-isolate state.
//!
//! State belongs to a target (a service's name and a target's URL), not to
//! a config: when a new config arrives, targets it keeps keep their state
//! (an ejected target stays ejected, a request in flight is still counted
//! when it ends). The request path finds a service's state by a slot
//! number fixed at config load, never by name.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use super::Upstream;
use super::balanced::Balanced;
use super::outlier::Outlier;
use super::retry::RetryBudget;
use crate::config::Config;
use crate::platform::{Randomness, UnixMillis};

/// The balanced services' state in one isolate.
#[derive(Default)]
pub struct Balancers {
    current: RefCell<Option<Rc<Generation>>>,
    /// xorshift64* state, seeded from the platform on first use; 0 until.
    random: Cell<u64>,
}

/// The states of one config's balanced services, by slot.
struct Generation {
    generation: u64,
    services: Vec<Rc<ServiceState>>,
}

/// One balanced service in one isolate.
pub struct ServiceState {
    name: Rc<str>,
    /// In the service's target order.
    pub(super) targets: Vec<Rc<TargetState>>,
    /// Smooth round-robin scores, by target.
    pub(super) round_robin: RefCell<Vec<i64>>,
    pub(super) budget: RefCell<RetryBudget>,
}

/// One target of a balanced service in one isolate.
pub struct TargetState {
    /// The target's URL as the config normalised it.
    label: Rc<str>,
    pub(super) in_flight: Cell<u32>,
    pub(super) outlier: RefCell<Outlier>,
}

impl TargetState {
    fn new(label: Rc<str>) -> TargetState {
        TargetState {
            label,
            in_flight: Cell::new(0),
            outlier: RefCell::default(),
        }
    }

    pub fn label(&self) -> &Rc<str> {
        &self.label
    }

    /// Requests to it in flight from this isolate.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.get()
    }
}

impl ServiceState {
    pub fn name(&self) -> &Rc<str> {
        &self.name
    }

    pub fn targets(&self) -> &[Rc<TargetState>] {
        &self.targets
    }

    /// How many of its targets are ejected (or awaiting their trial).
    pub fn ejected(&self) -> usize {
        self.targets
            .iter()
            .filter(|target| target.outlier.borrow().is_out())
            .count()
    }

    /// Count a request for the retry budget.
    pub fn record_request(&self, now: UnixMillis) {
        self.budget.borrow_mut().record_request(now);
    }
}

impl Balancers {
    /// The state of `balanced` under `config` (the config serving the
    /// request). A newer config than the last one seen replaces the
    /// states, keeping those of targets it still has; a request still on
    /// an older config gets states for it that are not kept.
    pub fn service(&self, config: &Config, balanced: &Balanced) -> Rc<ServiceState> {
        let current = self.current.borrow().clone();
        let generation = match current {
            Some(current) if current.generation == config.generation => current,
            previous => {
                let fresh = Rc::new(self.build(config, previous.as_deref()));
                if previous
                    .as_ref()
                    .is_none_or(|previous| previous.generation < config.generation)
                {
                    *self.current.borrow_mut() = Some(Rc::clone(&fresh));
                }
                fresh
            }
        };
        match generation.services.get(balanced.slot) {
            Some(state) => Rc::clone(state),
            // Only a balanced service from another config could miss.
            None => Rc::new(fresh_service(balanced, None)),
        }
    }

    fn build(&self, config: &Config, previous: Option<&Generation>) -> Generation {
        let kept: HashMap<(&str, &str), &Rc<TargetState>> = previous
            .map(|previous| {
                previous
                    .services
                    .iter()
                    .flat_map(|service| {
                        service
                            .targets
                            .iter()
                            .map(move |target| ((&*service.name, &*target.label), target))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let budgets: HashMap<&str, &RefCell<RetryBudget>> = previous
            .map(|previous| {
                previous
                    .services
                    .iter()
                    .map(|service| (&*service.name, &service.budget))
                    .collect()
            })
            .unwrap_or_default();
        let services = config
            .services
            .iter()
            .filter_map(|service| match &service.upstream {
                Upstream::Balanced(balanced) => Some(balanced),
                Upstream::Single(_) => None,
            })
            .map(|balanced| {
                let mut state = fresh_service(balanced, Some(&kept));
                if let Some(budget) = budgets.get(&*balanced.service) {
                    state.budget = RefCell::new(budget.borrow().clone());
                }
                Rc::new(state)
            })
            .collect();
        Generation {
            generation: config.generation,
            services,
        }
    }

    /// A random number from the isolate's generator, seeded from the
    /// platform's randomness on first use.
    pub fn draw(&self, random: &dyn Randomness) -> u64 {
        let mut x = self.random.get();
        if x == 0 {
            let mut seed = [0u8; 8];
            random.fill_random(&mut seed);
            x = u64::from_le_bytes(seed) | 1;
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.random.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn fresh_service(
    balanced: &Balanced,
    kept: Option<&HashMap<(&str, &str), &Rc<TargetState>>>,
) -> ServiceState {
    let targets = balanced
        .targets
        .iter()
        .map(|target| {
            kept.and_then(|kept| kept.get(&(&*balanced.service, &*target.label)))
                .map(|state| Rc::clone(state))
                .unwrap_or_else(|| Rc::new(TargetState::new(Rc::clone(&target.label))))
        })
        .collect();
    ServiceState {
        name: Rc::clone(&balanced.service),
        targets,
        round_robin: RefCell::new(vec![0; balanced.targets.len()]),
        budget: RefCell::default(),
    }
}
