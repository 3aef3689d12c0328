//! Small, shared facts about HTTP that several parts of the gateway need:
//! which headers belong to one hop only, how to read `Cache-Control`, and
//! what upgrades, `Expect` and interim responses ask of a proxy.
//!
//! Pure functions over `http` types; nothing here knows about routes,
//! config or the platform, so any module may use it without pulling in
//! request-path code.

pub mod cache_control;
pub mod hop_by_hop;
pub mod upgrade;

pub use cache_control::CacheControl;
pub use hop_by_hop::{connection_listed, is_hop_by_hop, strip_hop_by_hop};
