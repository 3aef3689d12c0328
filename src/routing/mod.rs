//! Routing: which route serves a request, and what path goes upstream.
//!
//! Routes are data ([`RouteSpec`]); [`RouteTable::find`] is the one pure
//! lookup, with the precedence documented in [`table`]. Nothing here does
//! I/O or knows about services, timeouts or the platform.

pub mod host;
pub mod methods;
pub mod path;
pub mod pattern;
pub mod rewrite;
pub mod table;

pub use host::{HostPattern, normalize_request_host};
pub use methods::MethodSet;
pub use path::{PathError, RequestPath};
pub use pattern::PathPattern;
pub use rewrite::{PathTransform, Reach};
pub use table::{Lookup, RouteConflict, RouteSpec, RouteTable};
