//! A fresh database per test, and records to fill it with.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use mysql_async::prelude::Queryable;
use rand::Rng;
use tokenwarden_domain::*;
use tokenwarden_store::*;
use tokenwarden_store_mysql::{MysqlStore, MysqlUrl};

pub const URL_VAR: &str = "TOKENWARDEN_TEST_MYSQL_URL";

/// The server URL, or `None` (with a note) when MySQL tests are not wanted here.
pub fn server_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let required = std::env::var("TOKENWARDEN_TEST_REQUIRE_BACKENDS").unwrap_or_default();
            assert!(
                !required.contains("mysql"),
                "TOKENWARDEN_TEST_REQUIRE_BACKENDS names mysql but {URL_VAR} is not set"
            );
            eprintln!("note: {URL_VAR} is not set; skipping a MySQL store test");
            None
        }
    }
}

/// A database created for one test.
pub struct FreshDb {
    admin: String,
    pub name: String,
    pub url: String,
}

impl FreshDb {
    pub async fn create(server: &str) -> Self {
        let name = format!("tw_{:016x}", rand::thread_rng().r#gen::<u64>());
        let mut conn = mysql_async::Conn::from_url(server).await.unwrap();
        conn.query_drop(format!(
            "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        ))
        .await
        .unwrap();
        conn.disconnect().await.unwrap();
        let mut url = url::Url::parse(server).unwrap();
        url.set_path(&format!("/{name}"));
        Self {
            admin: server.to_owned(),
            name,
            url: url.to_string(),
        }
    }

    pub async fn drop_database(self) {
        let mut conn = mysql_async::Conn::from_url(self.admin.as_str())
            .await
            .unwrap();
        conn.query_drop(format!("DROP DATABASE IF EXISTS `{}`", self.name))
            .await
            .unwrap();
        conn.disconnect().await.unwrap();
    }
}

/// Runs `test` against a migrated store on a fresh database, and drops the database
/// afterwards, also when the test fails.
pub async fn with_store<F, Fut>(test: F)
where
    F: FnOnce(Arc<MysqlStore>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(server) = server_url() else { return };
    let db = FreshDb::create(&server).await;
    let store = Arc::new(
        MysqlStore::open(&MysqlUrl::parse(&db.url).unwrap())
            .await
            .unwrap(),
    );
    let outcome = tokio::spawn(test(store.clone())).await;
    if let Ok(store) = Arc::try_unwrap(store) {
        store.close().await.unwrap();
    }
    db.drop_database().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

pub fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).unwrap()
}

/// A generator that may live across an `.await` (the thread-local one may not).
pub fn rng() -> rand::rngs::StdRng {
    rand::SeedableRng::from_entropy()
}

pub fn audit(vault: Option<&VaultId>, action: &'static str, t: i64) -> NewAuditRecord {
    NewAuditRecord {
        id: AuditId::generate(&mut rng()),
        vault_id: vault.cloned(),
        at: at(t),
        actor: Actor::Anonymous,
        action,
        target: Some("t".into()),
        outcome: "success",
        ip: Some("127.0.0.1".into()),
    }
}

pub fn new_account(email: &str) -> NewAccount {
    NewAccount {
        id: AccountId::generate(&mut rng()),
        email: Email::parse(email).unwrap(),
        kdf_params: "m=19456,t=2,p=1".into(),
        kdf_salt: vec![1, 2, 3, 0, 255],
        verifier: vec![9; 32].into(),
        created_at: at(1_700_000_000_123),
    }
}

pub fn new_key(vault: &VaultId, name: &str) -> NewApiKey {
    NewApiKey {
        id: ApiKeyId::generate(&mut rng()),
        vault_id: vault.clone(),
        name: Name::parse(name).unwrap(),
        roles: Roles::admin(),
        scope: KeyScope::default(),
        lookup_hash: vec![0xab; 32].into(),
        slot: vec![0, 1, 2, 0xff].into(),
        created_at: at(1_700_000_000_456),
        expires_at: Some(at(1_800_000_000_789)),
        created_by: "acc_x".into(),
    }
}

/// A vault with its owner and first key; returns the vault id and the key.
pub async fn vault(store: &MysqlStore) -> (VaultId, AccountId, NewApiKey) {
    let account = new_account(&format!("owner{}@example.com", rng().r#gen::<u32>()));
    let account_id = account.id.clone();
    store.create_account(account).await.unwrap();
    let id = VaultId::generate(&mut rng());
    let key = new_key(&id, "first");
    store
        .create_vault(NewVault {
            vault: VaultRecord {
                id: id.clone(),
                name: Name::parse("Team vault").unwrap(),
                managed: true,
                dek_key_id: 7,
                sealing_public_key: vec![4; 32],
                sealing_private_key: vec![5; 48].into(),
                master_slot: Some(vec![6; 60].into()),
                created_at: at(1_700_000_000_001),
            },
            owner: account_id.clone(),
            owner_slot: vec![8; 60].into(),
            first_key: key.clone(),
            audit: vec![
                audit(Some(&id), "vault.create", 1),
                audit(Some(&id), "api_key.create", 2),
            ],
        })
        .await
        .unwrap();
    (id, account_id, key)
}

pub fn scopes(list: &[&str]) -> Scopes {
    Scopes::parse(list).unwrap()
}

pub fn app(vault: &VaultId, key: &str, provider: &str) -> AppRecord {
    AppRecord {
        id: AppId::generate(&mut rng()),
        vault_id: vault.clone(),
        key: AppKey::parse(key).unwrap(),
        provider_key: provider.into(),
        client_id: "client-1".into(),
        client_secret: vec![0, 10, 20, 0].into(),
        scopes: scopes(&["repo", "read:user"]),
        status: AppStatus::Active,
        created_at: at(1_700_000_001_000),
        updated_at: at(1_700_000_001_000),
    }
}

pub fn tokens(t: i64, body: u8) -> TokenWrite {
    TokenWrite {
        token_set: vec![body, 0, body].into(),
        token_format: TokenFormat::Sealed,
        expires_at: Some(at(t + 3_600_000)),
        has_refresh: true,
        scopes: scopes(&["repo"]),
        at: at(t),
        schedule: tokenwarden_store::Schedule::default(),
    }
}

pub fn upsert(vault: &VaultId, id: &str, app: &AppId, t: i64, body: u8) -> ConnectionUpsert {
    ConnectionUpsert {
        vault_id: vault.clone(),
        id: ConnectionId::parse(id).unwrap(),
        app_id: app.clone(),
        tokens: tokens(t, body),
        events: None,
    }
}

/// A vault with a custom provider and an app of it, for the connection tests.
pub async fn app_fixture(store: &Arc<MysqlStore>) -> (VaultId, AppRecord) {
    let (vault, _, _) = vault(store).await;
    store
        .create_provider(
            ProviderRecord {
                vault_id: vault.clone(),
                key: "acme".into(),
                spec: r#"{"name":"Acme"}"#.into(),
                created_at: at(2_000),
            },
            audit(Some(&vault), "provider.create", 2),
        )
        .await
        .unwrap();
    let app = app(&vault, "acme-app", "acme");
    store
        .create_app(app.clone(), audit(Some(&vault), "app.create", 3))
        .await
        .unwrap();
    (vault, app)
}

pub fn cid(s: &str) -> ConnectionId {
    ConnectionId::parse(s).unwrap()
}

/// A refused refresh token, judged at `t`.
pub fn needs_reauth(t: i64) -> tokenwarden_store::HealthChange {
    tokenwarden_store::HealthChange {
        status: tokenwarden_store::ConnectionStatus::NeedsReauth,
        status_reason: Some("the provider refused the refresh token".into()),
        schedule: tokenwarden_store::Schedule::default(),
        failures: 0,
        expiring_notified_at: None,
        at: at(t),
    }
}
