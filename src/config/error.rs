//! Configuration errors: every problem found in a document, each naming the
//! JSON path of the offending field and the reason.

use std::fmt;

/// One problem in a configuration document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Where, as a JSON path: `routes[2].path`, `services.users.url`, or
    /// `(document)` for the document as a whole.
    pub path: String,
    pub reason: String,
}

/// A refused configuration document: at least one issue.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub issues: Vec<ConfigIssue>,
}

impl ConfigError {
    pub(crate) fn single(path: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            issues: vec![ConfigIssue {
                path: path.into(),
                reason: reason.into(),
            }],
        }
    }

    /// Each issue as one `path: reason` line.
    pub fn lines(&self) -> Vec<String> {
        self.issues.iter().map(ToString::to_string).collect()
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines().join("\n"))
    }
}

/// Collects issues while a document is checked.
#[derive(Default)]
pub(crate) struct Issues(Vec<ConfigIssue>);

impl Issues {
    pub(crate) fn push(&mut self, path: impl Into<String>, reason: impl fmt::Display) {
        self.0.push(ConfigIssue {
            path: path.into(),
            reason: reason.to_string(),
        });
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn into_error(self) -> ConfigError {
        ConfigError { issues: self.0 }
    }
}
