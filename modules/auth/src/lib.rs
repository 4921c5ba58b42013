//! Users, passwords and API tokens, and the guard that turns a bearer token into a [`Caller`]
//! whose permissions every handler checks on the server.
//!
//! Owns the tables `users` and `api_tokens`. Tokens are stored as digests only; the token itself
//! is shown once, at creation.

mod cache;
mod error;
mod guard;
mod users;

pub use cache::TokenCache;
pub use error::AuthError;
pub use guard::Caller;
pub use users::{
    InitialAdmin, NewUser, count_users, create_token, create_user, ensure_initial_admin,
    find_by_token,
};
