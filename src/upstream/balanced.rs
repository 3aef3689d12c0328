//! A balanced upstream: several targets (or one, with retries or health
//! checks), the algorithm that spreads requests over them, and the choice
//! of the target for one try.
//!
//! A choice goes in three steps. First the targets that may take the
//! request: not down by the scheduled health check, not ejected by passive
//! health (a half-open target may take one trial request), and not the
//! target the previous try of this request went to, when there is another.
//! Then, for a service whose targets say where they are, the nearest of
//! those to the caller (same country, else same continent, else all).
//! Last, the algorithm picks among what is left ([`super::pick`]). With
//! nothing left the request is refused with 503 `no-healthy-upstream`
//! rather than sent to a target known to be failing.
//!
//! The chosen target comes with a [`Lease`]: it counts the request as in
//! flight until the lease ends, and its outcome goes to passive health.

use std::rc::Rc;

use http::HeaderName;

use super::geo::{Location, Nearness, Place};
use super::hash::Ring;
use super::health::{ActiveHealth, CHECKED_DOWN_RETRY_AFTER};
use super::outlier::{Availability, HealthChange, PassiveHealth};
use super::pick::{self, Candidate};
use super::retry::RetryPolicy;
use super::state::{ServiceState, TargetState};
use super::{Origin, Upstream};
use crate::config::Config;
use crate::platform::{Randomness, UnixMillis};

use super::state::Balancers;

/// Several targets behind one service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Balanced {
    /// The service's name (its state's key, and for the log).
    pub service: Rc<str>,
    pub targets: Vec<Target>,
    pub algorithm: Algorithm,
    /// `consistent_hash` only: the targets' points.
    pub ring: Ring,
    /// Whether any target says where it is (then the caller's location is
    /// read and nearby targets preferred).
    pub geo: bool,
    /// The service's retry policy; `None`: the always-safe retry only.
    pub retry: Option<Rc<RetryPolicy>>,
    pub passive: Option<PassiveHealth>,
    pub active: Option<ActiveHealth>,
    /// Where the isolate keeps this service's state (its position among
    /// the config's balanced services).
    pub slot: usize,
}

/// One target of a balanced service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub origin: Origin,
    /// Its URL as normalised at load: its state's key, its health check
    /// results' key, and its ring points' label.
    pub label: Rc<str>,
    /// `host:port`, as the log names it.
    pub authority: Rc<str>,
    /// 1 or more.
    pub weight: u32,
    pub place: Place,
}

/// How requests are spread over the targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// Weighted, smooth: the default.
    RoundRobin,
    /// Weighted random.
    Random,
    /// The power of two choices over requests in flight (per isolate).
    LeastRequest,
    /// The same key to the same target while it is healthy.
    ConsistentHash(HashOn),
}

/// What a `consistent_hash` service hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HashOn {
    /// The caller's consumer name, else its token subject.
    Consumer,
    /// The client's address.
    Ip,
    /// A request header's value.
    Header(HeaderName),
    /// A path parameter of the route.
    Param(String),
}

/// What a choice may depend on besides the targets: the isolate's state,
/// and this request.
pub struct ChoiceInput<'a> {
    pub balancers: &'a Balancers,
    /// The config serving the request (its generation finds the state).
    pub config: &'a Config,
    pub random: &'a dyn Randomness,
    pub now: UnixMillis,
    /// The hashed key, on a `consistent_hash` service (absent: random).
    pub key: Option<u64>,
    /// The caller's location, on a service whose targets have places.
    pub location: Option<&'a Location>,
    /// The target the previous try went to.
    pub avoid: Option<u32>,
}

/// The target for one try.
pub struct Chosen<'u> {
    pub origin: &'u Origin,
    /// On a balanced upstream: which target, and its lease.
    pub lease: Option<Lease<'u>>,
}

/// A request on its way to a balanced target: counted in flight until it
/// ends; a half-open target's trial while it is one.
pub struct Lease<'u> {
    balanced: &'u Balanced,
    service: Rc<ServiceState>,
    target: Rc<TargetState>,
    index: u32,
    trial: bool,
}

/// No target may take the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoHealthyTarget {
    /// Seconds until one may again, as far as this isolate knows.
    pub retry_after: u64,
}

impl Balanced {
    /// The target for one try (see the module's documentation).
    pub fn choose<'u>(
        &'u self,
        state: &Rc<ServiceState>,
        input: &ChoiceInput<'_>,
    ) -> Result<Chosen<'u>, NoHealthyTarget> {
        let now = input.now;
        let mut candidates: Vec<Candidate> = Vec::with_capacity(self.targets.len());
        for ((target, target_state), index) in self.targets.iter().zip(&state.targets).zip(0u32..) {
            let available = !target_state.checked_down(now)
                && matches!(
                    target_state.outlier.borrow().availability(now),
                    Availability::Open | Availability::HalfOpen
                );
            if available {
                candidates.push(Candidate {
                    index,
                    weight: target.weight,
                });
            }
        }
        if let Some(avoid) = input.avoid
            && candidates.iter().any(|c| c.index != avoid)
        {
            candidates.retain(|c| c.index != avoid);
        }
        if self.geo
            && let Some(location) = input.location
        {
            self.keep_nearest(&mut candidates, location);
        }
        let chosen = self
            .pick(state, &candidates, input)
            .ok_or_else(|| self.no_healthy_target(state, now))?;
        let (Some(target), Some(target_state)) = (
            self.targets.get(chosen as usize),
            state.targets.get(chosen as usize),
        ) else {
            return Err(self.no_healthy_target(state, now));
        };
        let trial = target_state.outlier.borrow().availability(now) == Availability::HalfOpen;
        if trial {
            target_state.outlier.borrow_mut().start_trial();
        }
        target_state
            .in_flight
            .set(target_state.in_flight.get().saturating_add(1));
        Ok(Chosen {
            origin: &target.origin,
            lease: Some(Lease {
                balanced: self,
                service: Rc::clone(state),
                target: Rc::clone(target_state),
                index: chosen,
                trial,
            }),
        })
    }

    fn keep_nearest(&self, candidates: &mut Vec<Candidate>, location: &Location) {
        let nearness = |c: &Candidate| {
            self.targets
                .get(c.index as usize)
                .map_or(Nearness::Elsewhere, |t| t.place.nearness(location))
        };
        let Some(best) = candidates.iter().map(nearness).max() else {
            return;
        };
        if best != Nearness::Elsewhere {
            candidates.retain(|c| nearness(c) == best);
        }
    }

    fn pick(
        &self,
        state: &ServiceState,
        candidates: &[Candidate],
        input: &ChoiceInput<'_>,
    ) -> Option<u32> {
        match (&self.algorithm, candidates) {
            (_, []) => None,
            (_, [only]) => Some(only.index),
            (Algorithm::RoundRobin, _) => {
                pick::smooth_round_robin(candidates, &mut state.round_robin.borrow_mut())
            }
            (Algorithm::Random, _) => {
                pick::weighted_random(candidates, input.balancers.draw(input.random))
            }
            (Algorithm::LeastRequest, _) => {
                let draws = (
                    input.balancers.draw(input.random),
                    input.balancers.draw(input.random),
                );
                pick::power_of_two_choices(
                    candidates,
                    |index| {
                        state
                            .targets
                            .get(index as usize)
                            .map_or(0, |target| target.in_flight())
                    },
                    draws,
                )
            }
            (Algorithm::ConsistentHash(_), _) => match input.key {
                Some(key) => pick::on_ring(&self.ring, key, candidates),
                None => pick::weighted_random(candidates, input.balancers.draw(input.random)),
            },
        }
    }

    /// The refusal when nothing may take the request: retry when the first
    /// ejection ends, or after the next scheduled check.
    fn no_healthy_target(&self, state: &ServiceState, now: UnixMillis) -> NoHealthyTarget {
        let soonest = state
            .targets
            .iter()
            .filter(|target| !target.checked_down(now))
            .filter_map(|target| target.outlier.borrow().ejected_until())
            .map(|until| until.millis_since(now).div_ceil(1000).max(1))
            .min();
        NoHealthyTarget {
            retry_after: soonest.unwrap_or(CHECKED_DOWN_RETRY_AFTER),
        }
    }

    /// Whether requests need the caller's location.
    pub fn wants_location(&self) -> bool {
        self.geo
    }

    /// What a `consistent_hash` service hashes, if it is one.
    pub fn hash_on(&self) -> Option<&HashOn> {
        match &self.algorithm {
            Algorithm::ConsistentHash(on) => Some(on),
            _ => None,
        }
    }
}

impl<'u> Lease<'u> {
    /// The chosen target's position in the service's list.
    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn target(&self) -> Option<&'u Target> {
        self.balanced.targets.get(self.index as usize)
    }

    /// The try ended: `failed` says whether it counts against the target's
    /// health. Returns a change worth logging.
    pub fn finish(mut self, failed: bool, now: UnixMillis) -> Option<HealthChange> {
        let trial = std::mem::take(&mut self.trial);
        let passive = self.balanced.passive.as_ref()?;
        let may_eject = self.service.ejected() < passive.max_ejected(self.service.targets.len());
        self.target
            .outlier
            .borrow_mut()
            .record(failed, trial, may_eject, now, passive)
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.target
            .in_flight
            .set(self.target.in_flight.get().saturating_sub(1));
        if self.trial {
            self.target.outlier.borrow_mut().abandon_trial();
        }
    }
}

impl Upstream {
    /// The target for one try of this request: the one place a target is
    /// chosen (pingora's `upstream_peer`). One origin needs no choice; a
    /// balanced upstream chooses by health, place, load, hash or turn, and
    /// refuses when no target may take the request.
    pub fn choose(&self, input: &ChoiceInput<'_>) -> Result<Chosen<'_>, NoHealthyTarget> {
        match self {
            Upstream::Single(origin) => Ok(Chosen {
                origin,
                lease: None,
            }),
            Upstream::Balanced(balanced) => {
                let state = input.balancers.service(input.config, balanced);
                balanced.choose(&state, input)
            }
            // An aggregate has no target of its own (its legs' services
            // choose theirs); the upstream phase never asks it.
            Upstream::Aggregate(_) => Err(NoHealthyTarget { retry_after: 1 }),
        }
    }
}
