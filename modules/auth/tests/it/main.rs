//! Users and tokens against a real store (the backend `VIGIE_TEST_DATABASE` selects).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use vigie_auth::{
    AuthError, NewUser, create_token, create_user, ensure_initial_admin, find_by_token,
};
use vigie_core::on_pool;
use vigie_core::role::Role;
use vigie_core::secret::verify_password;
use vigie_core::store::Store;
use vigie_core::testing::TestDb;

async fn store() -> (TestDb, Store) {
    let db = TestDb::create().await.unwrap();
    let store = db.store().await.unwrap();
    (db, store)
}

fn user(login: &str, role: Role) -> NewUser {
    NewUser {
        login: login.into(),
        role,
        email: Some(format!("{login}@example.org")),
        display_name: None,
        password: Some("a-long-enough-password".into()),
        must_change_password: false,
    }
}

#[tokio::test]
async fn the_initial_administrator_is_made_once_even_by_concurrent_starts() {
    let (_db, store) = store().await;
    let (a, b) = tokio::join!(ensure_initial_admin(&store), ensure_initial_admin(&store));
    let made: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(made.len(), 1, "exactly one start creates it");
    let hash: String = on_pool!(&store, pool => sqlx::query_scalar(
        "SELECT password_hash FROM users WHERE login = 'admin' AND role = 'admin' AND must_change_password"
    ).fetch_one(pool).await).unwrap();
    assert!(hash.starts_with("$argon2id$"));
    assert!(verify_password(&made[0].password, &hash));
    assert!(ensure_initial_admin(&store).await.unwrap().is_none());
}

#[tokio::test]
async fn no_initial_administrator_once_someone_exists() {
    let (_db, store) = store().await;
    create_user(&store, user("ops", Role::Operator))
        .await
        .unwrap();
    assert!(ensure_initial_admin(&store).await.unwrap().is_none());
}

#[tokio::test]
async fn logins_are_unique() {
    let (_db, store) = store().await;
    create_user(&store, user("ops", Role::Operator))
        .await
        .unwrap();
    let again = create_user(&store, user("ops", Role::Manager)).await;
    assert!(
        matches!(again, Err(AuthError::LoginTaken(ref l)) if l == "ops"),
        "{again:?}"
    );
}

#[tokio::test]
async fn tokens_authenticate_until_revoked_or_the_user_is_disabled() {
    let (_db, store) = store().await;
    let id = create_user(&store, user("ops", Role::Operator))
        .await
        .unwrap();
    let token = create_token(&store, "ops", Some("ci")).await.unwrap();
    let other = create_token(&store, "ops", None).await.unwrap();
    let caller = find_by_token(&store, &token).await.unwrap().unwrap();
    assert_eq!(
        (caller.user_id, caller.login.as_str(), caller.role),
        (id, "ops", Role::Operator)
    );
    assert!(find_by_token(&store, "vgt_nope").await.unwrap().is_none());

    // Only the digest is stored.
    let stored: i64 = on_pool!(&store, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM api_tokens WHERE digest = $1"
    ).bind(&token).fetch_one(pool).await)
    .unwrap();
    assert_eq!(stored, 0);

    on_pool!(&store, pool => sqlx::query("UPDATE api_tokens SET revoked_at = created_at WHERE label = 'ci'")
        .execute(pool).await.map(drop)).unwrap();
    assert!(find_by_token(&store, &token).await.unwrap().is_none());
    assert!(find_by_token(&store, &other).await.unwrap().is_some());

    on_pool!(&store, pool => sqlx::query("UPDATE users SET disabled = TRUE WHERE login = 'ops'")
        .execute(pool).await.map(drop))
    .unwrap();
    assert!(find_by_token(&store, &other).await.unwrap().is_none());
    assert!(matches!(
        create_token(&store, "ops", None).await,
        Err(AuthError::Disabled(_))
    ));
    assert!(matches!(
        create_token(&store, "ghost", None).await,
        Err(AuthError::UnknownLogin(_))
    ));
}
