//! The configuration document as people write it: plain serde types that
//! mirror the JSON (and `docs/config.schema.json`) one to one.
//!
//! No validation lives here beyond what serde does (types, unknown fields,
//! required fields); [`super::Config::from_json`] turns these into checked
//! domain types. Keep this file, the schema and `docs/config.md` in step.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole document stored under the `config` key of the `CONFIG`
/// namespace.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigDocument {
    /// For editors; ignored by the gateway.
    #[serde(rename = "$schema", default)]
    pub schema: Option<String>,
    pub version: u32,
    #[serde(default)]
    pub settings: SettingsDocument,
    pub services: BTreeMap<String, ServiceDocument>,
    pub routes: Vec<RouteDocument>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsDocument {
    pub config_refresh_seconds: Option<u64>,
    pub request_id_header: Option<String>,
    pub trust_forwarded_headers: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDocument {
    pub url: String,
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteDocument {
    pub id: String,
    pub path: String,
    pub methods: Option<Vec<String>>,
    pub hosts: Option<Vec<String>>,
    pub service: String,
    pub strip_prefix: Option<String>,
    pub rewrite: Option<String>,
    pub timeout_ms: Option<u64>,
}
