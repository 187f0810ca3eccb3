//! What every config section implements to be checked with the others:
//! the [`Validate`] trait and the [`ConfigError`] it reports. A leaf
//! module: sections in the actors' files use it without depending on the
//! loader that assembles them.

use std::fmt;

/// One problem in the configuration, with the key it concerns.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// A section checks its own values; `path` is its key prefix.
pub trait Validate {
    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>);
}

/// Adds "must be at least 1" for each of `fields` (key, value) that is 0.
pub fn at_least_one(path: &str, fields: &[(&str, usize)], errors: &mut Vec<ConfigError>) {
    for (key, value) in fields {
        if *value == 0 {
            errors.push(ConfigError::new(
                format!("{path}.{key}"),
                "must be at least 1",
            ));
        }
    }
}
