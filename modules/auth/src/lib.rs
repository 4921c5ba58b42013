//! People and access: users and their identity, passwords and the lockout, the TOTP second
//! factor, browser sessions and login steps, API tokens and the bearer guard, and the menus that
//! decide each user's permissions.
//!
//! Owns the tables `users`, `api_tokens`, `sessions`, `login_challenges`, `user_links`, `menus`,
//! `menu_roles`, `user_menus`, `role_settings` and `user_domains`. Secrets are stored as argon2id hashes (passwords)
//! or digests (tokens, session ids, links, recovery codes); each is shown once, at creation.

mod cache;
pub mod contacts;
mod error;
mod guard;
pub mod login;
pub mod menus;
pub mod session;
mod users;

pub use cache::TokenCache;
pub use error::{AuthError, Problem};
pub use guard::Caller;
pub use users::{
    InitialAdmin, LinkMail, LinkPolicy, NewUser, Person, PersonForm, TokenInfo, User,
    change_password, check_new_password, check_person, count_users, create_own_token,
    create_person, create_token, create_user, ensure_initial_admin, find_by_token, get_user,
    get_user_by_login, list_tokens, peek_link, resend_activation, revoke_own_token, search_users,
    set_disabled, set_preferences, update_person, use_link,
};
