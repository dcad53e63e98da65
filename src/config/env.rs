//! The variable lookup behind the configuration: empty counts as unset, and every
//! parse or bound failure is a [`ConfigError`] naming the variable.

use std::time::Duration;

use secrecy::SecretString;

use crate::cache::ratelimit::Limit;

use super::ConfigError;

/// A variable lookup (`get`) with typed, bounded accessors.
pub(super) struct Env<'a, F: Fn(&str) -> Option<String>>(pub(super) &'a F);

impl<F: Fn(&str) -> Option<String>> Env<'_, F> {
    pub(super) fn raw(&self, var: &str) -> Option<String> {
        (self.0)(var).filter(|v| !v.trim().is_empty())
    }
    pub(super) fn string(&self, var: &str, default: &str) -> String {
        self.raw(var).unwrap_or_else(|| default.to_string())
    }
    pub(super) fn secret_opt(&self, var: &str) -> Option<SecretString> {
        self.raw(var).map(Into::into)
    }
    pub(super) fn bad(&self, var: &'static str, reason: &str) -> ConfigError {
        ConfigError {
            var,
            reason: reason.to_string(),
        }
    }
    pub(super) fn parse<T: std::str::FromStr>(
        &self,
        var: &'static str,
        default: T,
    ) -> Result<T, ConfigError> {
        match self.raw(var) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| {
                self.bad(
                    var,
                    &format!("expected {}, got {v:?}", std::any::type_name::<T>()),
                )
            }),
        }
    }
    /// A number that must be at least `min`.
    pub(super) fn at_least<T>(
        &self,
        var: &'static str,
        default: T,
        min: T,
    ) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display,
    {
        match self.parse(var, default)? {
            n if n < min => Err(self.bad(var, &format!("must be at least {min}"))),
            n => Ok(n),
        }
    }
    /// `max_var` hits per `window_var` seconds.
    pub(super) fn limit(
        &self,
        max_var: &'static str,
        window_var: &'static str,
        max: u32,
        window: u64,
    ) -> Result<Limit, ConfigError> {
        Ok(Limit {
            max: self.parse(max_var, max)?,
            window: Duration::from_secs(self.parse(window_var, window)?),
        })
    }

    /// An AMQP/Redis name: non-empty, printable, no spaces.
    pub(super) fn name(&self, var: &'static str, default: &str) -> Result<String, ConfigError> {
        let v = self.string(var, default);
        if v.len() > 200 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(self.bad(var, "must be at most 200 characters without spaces"));
        }
        Ok(v)
    }
}

/// Everything but RFC 3986's unreserved characters.
const NOT_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes everything but unreserved characters (for URI user, password, vhost).
pub(crate) fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, NOT_UNRESERVED).to_string()
}
