//! Timestamps on the wire: RFC 3339, UTC, with milliseconds (`2026-01-02T03:04:05.678Z`,
//! JavaScript's `toISOString()`). [`format`] is the one formatter; `#[serde(with =
//! "crate::domain::time")]` (or `time::option`) uses it for fields.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// `t` as RFC 3339 in UTC with milliseconds and a `Z`.
pub fn format(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// [`format`] of a time in whole seconds since the Unix epoch (a JWT's `exp`); the
/// epoch itself if out of range.
pub fn format_unix(secs: i64) -> String {
    format(&DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default())
}

pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(t))
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    DateTime::<Utc>::deserialize(d)
}

/// Same, for optional timestamps.
pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<DateTime<Utc>>::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_utc_and_z() {
        let t = DateTime::<Utc>::from_timestamp_millis(1_767_323_045_678).unwrap();
        assert_eq!(format(&t), "2026-01-02T03:04:05.678Z");
        assert_eq!(format_unix(1_767_323_045), "2026-01-02T03:04:05.000Z");
        assert_eq!(format_unix(i64::MAX), "1970-01-01T00:00:00.000Z");
        let json = serde_json::to_string(&Some(t).map(|t| format(&t))).unwrap();
        assert_eq!(json, "\"2026-01-02T03:04:05.678Z\"");
    }
}
