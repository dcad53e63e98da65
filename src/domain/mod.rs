//! Types and rules of the chat domain. No I/O here: everything is unit-testable.

pub mod attachment;
pub mod chat;
pub mod compat;
pub mod events;
pub mod gateway_push;
pub mod lifecycle;
pub mod mention;
pub mod message;
pub mod moderation;
pub mod offset;
pub mod partition;
pub mod push;
pub mod receipts;
pub mod sequence;
pub mod session;
pub mod time;
pub mod user;

use validator::ValidationErrors;

/// The first field error as one human sentence, e.g. "content must be 1 to 4000 characters".
pub fn validation_message(errors: &ValidationErrors) -> String {
    let mut fields: Vec<_> = errors.field_errors().into_iter().collect();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    fields
        .into_iter()
        .find_map(|(field, errs)| {
            errs.first().map(|e| match &e.message {
                Some(m) => m.to_string(),
                None => format!("{field} is invalid"),
            })
        })
        .unwrap_or_else(|| "request is invalid".to_string())
}
