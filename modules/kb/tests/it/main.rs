//! The knowledge base end to end on the backend `VIGIE_TEST_DATABASE` selects: writes with their
//! audit entries, the accent-insensitive search and its ranking, suggestions, bad input, the API
//! (200/201/400/401/403/404) and the console pages with their permissions and CSRF.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod pages;
mod store;

use vigie_auth::session::{SessionPolicy, lookup, open};
use vigie_auth::{NewUser, create_token, create_user};
use vigie_core::audit::Actor;
use vigie_core::role::Role;
use vigie_core::store::Store;
use vigie_core::testing::TestDb;
use vigie_kb::Draft;

pub struct Hub {
    _db: TestDb,
    pub store: Store,
}

pub async fn hub() -> Hub {
    let db = TestDb::create().await.expect("test database");
    let store = db.store().await.expect("store");
    Hub { _db: db, store }
}

/// A user of `role`, with an API token and a console session (cookie, CSRF token).
pub struct Person {
    pub actor: Actor,
    pub token: String,
    pub cookie: String,
    pub csrf: String,
}

pub async fn person(store: &Store, login: &str, role: Role) -> Person {
    let user_id = create_user(
        store,
        NewUser {
            login: login.into(),
            role,
            email: None,
            display_name: None,
            password: None,
            must_change_password: false,
        },
    )
    .await
    .unwrap();
    let actor = Actor {
        user_id,
        login: login.into(),
        role,
    };
    let token = create_token(store, login, None).await.unwrap();
    let cookie = open(store, &actor, None, None, SessionPolicy::default(), false)
        .await
        .unwrap();
    let csrf = lookup(store, &cookie, SessionPolicy::default())
        .await
        .unwrap()
        .unwrap()
        .csrf;
    Person {
        actor,
        token,
        cookie,
        csrf,
    }
}

pub fn draft(title: &str, symptoms: &str, resolution: &str) -> Draft {
    Draft {
        title: title.into(),
        symptoms: symptoms.into(),
        cause: String::new(),
        resolution: resolution.into(),
        domain: None,
        tags: Vec::new(),
        incident_id: None,
        incident_reference: None,
    }
}

pub async fn count(store: &Store, sql: &'static str) -> i64 {
    vigie_core::on_pool!(store, pool => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await)
        .unwrap()
}

pub async fn articles(store: &Store) -> i64 {
    count(store, "SELECT COUNT(*) FROM kb_articles").await
}

pub async fn kb_audit(store: &Store) -> i64 {
    count(
        store,
        "SELECT COUNT(*) FROM audit_log WHERE action LIKE 'kb.%'",
    )
    .await
}
