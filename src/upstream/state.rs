//! What one isolate knows about its balanced services' targets: requests
//! in flight, round-robin scores, passive health, retry budgets, the
//! scheduled health check's last results, and the random numbers the
//! algorithms draw. It lives in the pipeline's per-isolate state.
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
use super::health::HealthDocument;
use super::outlier::{HealthChange, Outlier};
use super::retry::RetryBudget;
use crate::config::Config;
use crate::platform::{Randomness, UnixMillis};

/// The balanced services' state in one isolate.
#[derive(Default)]
pub struct Balancers {
    current: RefCell<Option<Rc<Generation>>>,
    /// xorshift64* state, seeded from the platform on first use; 0 until.
    random: Cell<u64>,
    health: RefCell<HealthView>,
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
    /// Down by the scheduled health check until then (when its result
    /// would be too old to trust).
    pub(super) down_until: Cell<Option<UnixMillis>>,
}

/// The scheduled health check's results as this isolate last read them.
#[derive(Default)]
struct HealthView {
    document: Option<Rc<HealthDocument>>,
    read_at: Option<UnixMillis>,
    /// When the read under way began.
    reading_since: Option<UnixMillis>,
}

/// A read of the health results that has not finished by then is taken to
/// have been lost (its request cancelled), and another may start.
const HEALTH_READ_GIVE_UP: std::time::Duration = std::time::Duration::from_secs(30);

/// Whether the health results are due for a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthRead {
    /// Fresh enough.
    NotDue,
    /// Never read in this isolate: read before choosing.
    First,
    /// Read again, in the background.
    Refresh,
}

impl TargetState {
    fn new(label: Rc<str>) -> TargetState {
        TargetState {
            label,
            in_flight: Cell::new(0),
            outlier: RefCell::default(),
            down_until: Cell::new(None),
        }
    }

    pub fn label(&self) -> &Rc<str> {
        &self.label
    }

    /// Requests to it in flight from this isolate.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.get()
    }

    /// Whether the scheduled health check has it down now.
    pub fn checked_down(&self, now: UnixMillis) -> bool {
        self.down_until.get().is_some_and(|until| now < until)
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
                Upstream::Single(_) | Upstream::Aggregate(_) => None,
            })
            .map(|balanced| {
                let mut state = fresh_service(balanced, Some(&kept));
                if let Some(budget) = budgets.get(&*balanced.service) {
                    state.budget = RefCell::new(budget.borrow().clone());
                }
                Rc::new(state)
            })
            .collect();
        let generation = Generation {
            generation: config.generation,
            services,
        };
        if let Some(document) = self.health.borrow().document.as_deref() {
            apply_health(&generation, document, None);
        }
        generation
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

    /// Whether the health results should be read now.
    pub fn health_read(&self, now: UnixMillis, every: std::time::Duration) -> HealthRead {
        let view = self.health.borrow();
        let reading = view
            .reading_since
            .is_some_and(|since| now.since(since) < HEALTH_READ_GIVE_UP);
        match view.read_at {
            _ if reading => HealthRead::NotDue,
            None => HealthRead::First,
            Some(at) if now.since(at) >= every => HealthRead::Refresh,
            Some(_) => HealthRead::NotDue,
        }
    }

    /// A read of the health results is under way.
    pub fn health_reading(&self, now: UnixMillis) {
        self.health.borrow_mut().reading_since = Some(now);
    }

    /// The health results as read at `now` (`None`: none stored or the
    /// read failed; what was known stays). Returns what changed, for the
    /// log: targets brought back by a passing check.
    pub fn health_read_done(
        &self,
        document: Option<HealthDocument>,
        now: UnixMillis,
    ) -> Vec<(Rc<str>, Rc<str>, HealthChange)> {
        let document = {
            let mut view = self.health.borrow_mut();
            view.reading_since = None;
            view.read_at = Some(now);
            match document {
                Some(document) => {
                    let document = Rc::new(document);
                    view.document = Some(Rc::clone(&document));
                    document
                }
                None => return Vec::new(),
            }
        };
        let current = self.current.borrow().clone();
        match current {
            Some(generation) => apply_health(&generation, &document, Some(now)),
            None => Vec::new(),
        }
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

/// Mark targets down (or up) as the health results say. With `now`, a
/// target the check saw answer after its passive ejection began is let
/// back in at once.
fn apply_health(
    generation: &Generation,
    document: &HealthDocument,
    now: Option<UnixMillis>,
) -> Vec<(Rc<str>, Rc<str>, HealthChange)> {
    let mut changes = Vec::new();
    let trusted_until = document.trusted_until();
    let checked_at = UnixMillis(document.checked_at);
    for service in &generation.services {
        for target in &service.targets {
            match document.target(&service.name, &target.label) {
                Some(health) if !health.up => target.down_until.set(Some(trusted_until)),
                Some(_) => {
                    target.down_until.set(None);
                    if let Some(now) = now
                        && let Some(change) =
                            target.outlier.borrow_mut().checked_up(checked_at, now)
                    {
                        changes.push((Rc::clone(&service.name), Rc::clone(&target.label), change));
                    }
                }
                None => target.down_until.set(None),
            }
        }
    }
    changes
}
