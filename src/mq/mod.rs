//! RabbitMQ: topology, a supervised connection that re-establishes itself, and
//! confirmed publishing.

pub mod connect;
pub mod dlq;
pub mod link;
pub mod publish;
pub mod topology;

pub use link::{Link, Session};
pub use topology::Topology;

use lapin::types::{AMQPValue, FieldTable, LongString};

/// Header carrying the request id from the API to the worker.
/// How long a publish waits for RabbitMQ's confirm before it is given up (503).
pub const CONFIRM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub const HEADER_REQUEST_ID: &str = "x-request-id";
/// Headers set on dead-lettered and retried messages.
pub const HEADER_ATTEMPTS: &str = "x-courier-attempts";
pub const HEADER_REASON: &str = "x-courier-reason";
pub const HEADER_LAST_ERROR: &str = "x-courier-last-error";
pub const HEADER_RETRY_DELAY: &str = "x-courier-retry-delay";
pub const HEADER_SOURCE_QUEUE: &str = "x-courier-source-queue";
/// On a command dead-lettered because its sender is banned (reason `banned`): the
/// ban's reason.
pub const HEADER_BAN_REASON: &str = "x-courier-ban-reason";

/// A string header value, if present.
pub fn header_str(headers: Option<&FieldTable>, name: &str) -> Option<String> {
    let v = headers?.inner().get(name)?;
    match v {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

/// An integer header value, if present.
pub fn header_u32(headers: Option<&FieldTable>, name: &str) -> Option<u32> {
    let v = headers?.inner().get(name)?;
    match v {
        AMQPValue::LongUInt(n) => Some(*n),
        AMQPValue::LongInt(n) => u32::try_from(*n).ok(),
        AMQPValue::LongLongInt(n) => u32::try_from(*n).ok(),
        AMQPValue::ShortInt(n) => u32::try_from(*n).ok(),
        AMQPValue::ShortUInt(n) => Some(u32::from(*n)),
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).parse().ok(),
        _ => None,
    }
}

pub fn long_string(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}
