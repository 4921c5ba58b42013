//! `GET /api/v1/syslog`: the stored messages, newest first, for scripts and other tools.
//!
//! Bearer token (`Authorization: Bearer …`), permission `supervision_view` (operators and
//! managers by default). Parameters: see [`crate::filter`]; unknown ones are refused. When the
//! page is full, the `X-Next-Before` header carries the id to pass as `before` for the next one.

use actix_web::{HttpRequest, HttpResponse, web};
use vigie_auth::Caller;
use vigie_core::role::Permission;

use crate::MessagesStore;
use crate::error::LogsError;
use crate::filter::{LIMIT_DEFAULT, LIMIT_MAX, LogFilter, Reader};
use crate::repo;

pub(crate) async fn list(
    req: HttpRequest,
    caller: Caller,
    store: web::Data<MessagesStore>,
) -> Result<HttpResponse, LogsError> {
    caller.require(Permission::SupervisionView)?;
    let filter = LogFilter::parse(req.query_string(), Reader::Api, LIMIT_DEFAULT, LIMIT_MAX)
        .map_err(LogsError::Invalid)?;
    let messages = repo::list(store.store(), &filter).await?;
    let mut response = HttpResponse::Ok();
    if messages.len() == filter.limit as usize
        && let Some(last) = messages.last()
    {
        response.insert_header(("X-Next-Before", last.id.to_string()));
    }
    Ok(response.json(messages))
}
