//! The route table: routes indexed by host and by path segment, and the one
//! `find` that picks the route for a request.
//!
//! Precedence, most specific first, decided in this order:
//! 1. Host: an exact host beats a wildcard host (longer suffix first),
//!    which beats a route without hosts.
//! 2. Path, segment by segment from the left: a literal beats a parameter,
//!    a parameter beats the end of the pattern, and the end of the pattern
//!    beats a trailing wildcard (so `/a` beats `/a/*` for the path `/a`).
//! 3. Method: a route that lists the method beats one that accepts any
//!    method, which beats a GET route answering HEAD.
//!
//! The first route in that order whose method fits wins; if routes match
//! the host and path but none accepts the method, the answer is 405 with
//! the methods they do accept. Two routes that would tie (same host
//! condition, same pattern up to parameter names, overlapping methods) are
//! refused when the table is built, so `find` never has to break a tie.

use std::collections::HashMap;

use http::Method;

use super::host::HostPattern;
use super::methods::MethodSet;
use super::path::RequestPath;
use super::pattern::{PathPattern, Segment};

/// What routing needs to know about a route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    pub id: String,
    /// Empty: any host.
    pub hosts: Vec<HostPattern>,
    pub path: PathPattern,
    pub methods: MethodSet,
}

/// Two routes that would claim the same requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteConflict {
    /// Index of the route listed first.
    pub first: usize,
    /// Index of the route listed later (the one the error is reported on).
    pub second: usize,
    pub host: Option<String>,
}

/// The outcome of a lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup<'t, T> {
    /// The winning route's value.
    Found(&'t T),
    /// Some route matches host and path, none the method. `allow` is sorted.
    MethodNotAllowed {
        allow: Vec<Method>,
    },
    NotFound,
}

#[derive(Debug, Default)]
struct Node {
    literals: HashMap<Box<str>, Node>,
    param: Option<Box<Node>>,
    /// Routes whose pattern ends exactly here.
    ends: Vec<usize>,
    /// Routes whose pattern ends in a wildcard here.
    wildcards: Vec<usize>,
}

/// Routes indexed for lookup, each with a value of the caller's (the
/// configured route, in the gateway) that a lookup hands back.
#[derive(Debug)]
pub struct RouteTable<T> {
    specs: Vec<RouteSpec>,
    values: Vec<T>,
    exact_hosts: HashMap<String, Node>,
    /// Sorted by suffix length, longest first.
    wildcard_hosts: Vec<(String, Node)>,
    any_host: Node,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        RouteTable {
            specs: Vec::new(),
            values: Vec::new(),
            exact_hosts: HashMap::new(),
            wildcard_hosts: Vec::new(),
            any_host: Node::default(),
        }
    }
}

impl<T> RouteTable<T> {
    /// Index `routes`, in document order; every tie is reported (by the
    /// routes' positions in that order).
    pub fn build(
        routes: impl IntoIterator<Item = (RouteSpec, T)>,
    ) -> Result<RouteTable<T>, Vec<RouteConflict>> {
        let (specs, values): (Vec<RouteSpec>, Vec<T>) = routes.into_iter().unzip();
        let mut table = RouteTable {
            values,
            ..RouteTable::default()
        };
        for (index, spec) in specs.iter().enumerate() {
            if spec.hosts.is_empty() {
                insert(&mut table.any_host, spec, index);
            }
            for host in &spec.hosts {
                let node = match host {
                    HostPattern::Exact(name) => table.exact_hosts.entry(name.clone()).or_default(),
                    HostPattern::Wildcard(suffix) => {
                        if !table.wildcard_hosts.iter().any(|(s, _)| s == suffix) {
                            table.wildcard_hosts.push((suffix.clone(), Node::default()));
                        }
                        match table.wildcard_hosts.iter_mut().find(|(s, _)| s == suffix) {
                            Some((_, node)) => node,
                            None => continue,
                        }
                    }
                };
                insert(node, spec, index);
            }
        }
        table
            .wildcard_hosts
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        table.specs = specs;

        let mut conflicts = Vec::new();
        for (name, node) in &table.exact_hosts {
            find_conflicts(node, &table.specs, Some(name), &mut conflicts);
        }
        for (suffix, node) in &table.wildcard_hosts {
            find_conflicts(
                node,
                &table.specs,
                Some(&format!("*{suffix}")),
                &mut conflicts,
            );
        }
        find_conflicts(&table.any_host, &table.specs, None, &mut conflicts);
        if conflicts.is_empty() {
            Ok(table)
        } else {
            conflicts.sort_by_key(|c| (c.second, c.first));
            conflicts.dedup();
            Err(conflicts)
        }
    }

    /// The route for a request. `host` is normalised (see
    /// [`normalize_request_host`](super::host::normalize_request_host)).
    pub fn find(&self, method: &Method, host: Option<&str>, path: &RequestPath) -> Lookup<'_, T> {
        let mut allow: Vec<Method> = Vec::new();
        if let Some(host) = host {
            if let Some(node) = self.exact_hosts.get(host)
                && let Some(found) = self.search_tier(node, method, path, &mut allow)
            {
                return Lookup::Found(found);
            }
            for (suffix, node) in &self.wildcard_hosts {
                if host.len() > suffix.len()
                    && host.ends_with(suffix.as_str())
                    && let Some(found) = self.search_tier(node, method, path, &mut allow)
                {
                    return Lookup::Found(found);
                }
            }
        }
        if let Some(found) = self.search_tier(&self.any_host, method, path, &mut allow) {
            return Lookup::Found(found);
        }
        if allow.is_empty() {
            Lookup::NotFound
        } else {
            allow.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            allow.dedup();
            Lookup::MethodNotAllowed { allow }
        }
    }

    fn search_tier(
        &self,
        root: &Node,
        method: &Method,
        path: &RequestPath,
        allow: &mut Vec<Method>,
    ) -> Option<&T> {
        let mut found = None;
        search(root, path, 0, &mut |candidates| {
            found = self.pick(candidates, method, allow);
            found.is_some()
        });
        self.values.get(found?)
    }

    /// Choose among routes with the same path shape by method.
    fn pick(
        &self,
        candidates: &[usize],
        method: &Method,
        allow: &mut Vec<Method>,
    ) -> Option<usize> {
        const ANY: &MethodSet = &MethodSet::Any;
        let methods = |index: &usize| self.specs.get(*index).map_or(ANY, |spec| &spec.methods);
        if let Some(&index) = candidates.iter().find(|i| methods(i).lists(method)) {
            return Some(index);
        }
        if let Some(&index) = candidates
            .iter()
            .find(|i| matches!(methods(i), MethodSet::Any))
        {
            return Some(index);
        }
        if method == Method::HEAD
            && let Some(&index) = candidates.iter().find(|i| methods(i).lists(&Method::GET))
        {
            return Some(index);
        }
        for index in candidates {
            if let MethodSet::Only(listed) = methods(index) {
                allow.extend(listed.iter().cloned());
                if listed.contains(&Method::GET) {
                    allow.push(Method::HEAD);
                }
            }
        }
        None
    }
}

fn insert(root: &mut Node, spec: &RouteSpec, index: usize) {
    let mut node = root;
    for segment in spec.path.segments() {
        node = match segment {
            Segment::Literal(text) => node.literals.entry(text.as_str().into()).or_default(),
            Segment::Param(_) => node.param.get_or_insert_with(Box::default),
        };
    }
    if spec.path.has_tail() {
        node.wildcards.push(index);
    } else {
        node.ends.push(index);
    }
}

/// Depth-first search in precedence order; `visit` gets each group of
/// routes whose pattern matches and returns `true` to stop.
fn search(
    node: &Node,
    path: &RequestPath,
    depth: usize,
    visit: &mut dyn FnMut(&[usize]) -> bool,
) -> bool {
    if depth == path.len() {
        if !node.ends.is_empty() && visit(&node.ends) {
            return true;
        }
    } else {
        let segment = path.segment(depth);
        if let Some(child) = node.literals.get(segment)
            && search(child, path, depth + 1, visit)
        {
            return true;
        }
        if let Some(child) = &node.param
            && !segment.is_empty()
            && search(child, path, depth + 1, visit)
        {
            return true;
        }
    }
    !node.wildcards.is_empty() && visit(&node.wildcards)
}

fn find_conflicts(
    node: &Node,
    specs: &[RouteSpec],
    host: Option<&String>,
    out: &mut Vec<RouteConflict>,
) {
    for group in [&node.ends, &node.wildcards] {
        for (at, &first) in group.iter().enumerate() {
            for &second in group.iter().skip(at + 1) {
                let (Some(a), Some(b)) = (specs.get(first), specs.get(second)) else {
                    continue;
                };
                if a.methods.overlaps(&b.methods) {
                    out.push(RouteConflict {
                        first: first.min(second),
                        second: first.max(second),
                        host: host.cloned(),
                    });
                }
            }
        }
    }
    for child in node.literals.values() {
        find_conflicts(child, specs, host, out);
    }
    if let Some(child) = &node.param {
        find_conflicts(child, specs, host, out);
    }
}
