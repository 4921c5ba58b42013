//! vigie-notify end to end against real peers, on the backend `VIGIE_TEST_DATABASE` selects:
//! aiosmtpd as the SMTP server, a local HTTP server as the SMS gateway and the webhooks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod delivery;
mod fault;
mod support;
mod templates;

use vigie_core::audit::Actor;
use vigie_core::on_pool;
use vigie_core::role::Role;
use vigie_core::store::Store;
use vigie_notify::{Channel, Message};

/// An administrator (a real user row: templates remember who saved them).
pub(crate) async fn admin(store: &Store) -> Actor {
    let id = on_pool!(store, pool => sqlx::query_scalar::<_, i64>(
        "INSERT INTO users (login, role, created_at) VALUES ('root', 'admin', $1) RETURNING id",
    )
    .bind(vigie_core::time::now())
    .fetch_one(pool)
    .await)
    .unwrap();
    Actor {
        user_id: id,
        login: "root".into(),
        role: Role::Admin,
    }
}

/// Queues one message in a transaction of its own and rings the worker.
pub(crate) async fn enqueue(store: &Store, message: &Message) -> i64 {
    let mut tx = store.begin().await.unwrap();
    let id = vigie_notify::enqueue_message(&mut tx, message)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    vigie_notify::wake();
    id
}

pub(crate) fn message(channel: Channel, recipient: &str, subject: &str, text: &str) -> Message {
    Message {
        channel,
        recipient: recipient.into(),
        subject: subject.into(),
        text: text.into(),
        html: None,
        kind: "test".into(),
        user_id: None,
        dedupe_key: None,
    }
}
