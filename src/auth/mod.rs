//! Credentials: Argon2id password hashes, JWT access tokens, opaque refresh tokens.

pub mod jwt;
pub mod password;
pub mod refresh;

pub use jwt::{Claims, JwtKeys};
