//! The bearer-token guard: an extractor that authenticates the request, and the permission
//! check handlers call first.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use vigie_core::role::{Permission, PermissionSet, Role};
use vigie_core::secret::token_digest;
use vigie_core::store::Store;

use crate::cache::TokenCache;
use crate::error::AuthError;
use crate::users::find_by_token;

/// The authenticated user behind a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub user_id: i64,
    pub login: String,
    pub role: Role,
    /// The role's permissions as the administrator adjusted them for this user (menus).
    pub permissions: PermissionSet,
}

impl Caller {
    /// Refuses with 403 unless the caller holds `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), AuthError> {
        if self.permissions.contains(permission) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(permission))
        }
    }
}

/// The token of an `Authorization: Bearer …` header, if the request has one.
fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

impl FromRequest for Caller {
    type Error = AuthError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, AuthError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer(req);
        let store = req.app_data::<web::Data<Store>>().cloned();
        let cache = req.app_data::<web::Data<TokenCache>>().cloned();
        Box::pin(async move {
            let token = token.ok_or(AuthError::MissingToken)?;
            let Some(store) = store else {
                tracing::error!("No store registered in the application: cannot check tokens.");
                return Err(AuthError::InvalidToken);
            };
            let digest = token_digest(&token);
            if let Some(caller) = cache.as_ref().and_then(|c| c.get(&digest)) {
                return Ok(caller);
            }
            let caller = find_by_token(&store, &token)
                .await?
                .ok_or(AuthError::InvalidToken)?;
            if let Some(cache) = cache {
                cache.put(digest, caller.clone());
            }
            Ok(caller)
        })
    }
}
