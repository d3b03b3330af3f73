//! Builders of valid records for the cases: every field set to a distinct value, times
//! at millisecond precision, binary columns holding bytes that are not valid UTF-8.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use tokenwarden_domain::{
    AccountId, ApiKeyId, AppId, AppKey, AuditId, ConnectSessionId, ConnectionId, Email, KeyScope,
    Name, Roles, Scopes, VaultId,
};
use tokenwarden_store::{
    Actor, AppRecord, AppStatus, ConnectLinkRecord, ConnectSessionRecord, ConnectStatus,
    ConnectionStatus, ConnectionUpsert, HealthChange, NewAccount, NewApiKey, NewAuditRecord,
    NewVault, Schedule, Store, TokenFormat, TokenWrite, VaultRecord,
};

/// A fixed instant with a millisecond part, so a backend that rounds to seconds (or
/// keeps microseconds from somewhere) shows.
pub fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_767_225_600_123).unwrap()
}

pub fn at(ms_after_t0: i64) -> DateTime<Utc> {
    t0() + Duration::milliseconds(ms_after_t0)
}

/// Bytes that are not UTF-8 and include NUL, tagged so two blobs differ.
pub fn blob(tag: u8) -> Vec<u8> {
    vec![0x00, 0xff, 0xfe, tag, 0x80, 0x00, 0x7f, tag]
}

pub fn rng() -> impl Rng {
    rand::thread_rng()
}

pub fn audit(vault: Option<&VaultId>, action: &'static str) -> NewAuditRecord {
    NewAuditRecord {
        id: AuditId::generate(&mut rng()),
        vault_id: vault.cloned(),
        at: t0(),
        actor: Actor::Anonymous,
        action,
        target: None,
        outcome: "success",
        ip: None,
    }
}

pub fn account(email: &str) -> NewAccount {
    NewAccount {
        id: AccountId::generate(&mut rng()),
        email: Email::parse(email).unwrap(),
        kdf_params: "m=19456,t=2,p=1".into(),
        kdf_salt: blob(1),
        verifier: blob(2).into(),
        created_at: t0(),
    }
}

pub fn api_key(vault: &VaultId) -> NewApiKey {
    NewApiKey {
        id: ApiKeyId::generate(&mut rng()),
        vault_id: vault.clone(),
        name: Name::parse("ci key").unwrap(),
        roles: Roles::admin(),
        scope: KeyScope::default(),
        lookup_hash: blob(3).into(),
        slot: blob(4).into(),
        created_at: t0(),
        expires_at: None,
        created_by: "acc_test".into(),
    }
}

/// A vault of a new account, with its owner slot, first key and one audit record.
pub fn vault(owner: &AccountId, managed: bool) -> NewVault {
    let id = VaultId::generate(&mut rng());
    NewVault {
        vault: VaultRecord {
            id: id.clone(),
            name: Name::parse("team vault").unwrap(),
            managed,
            dek_key_id: u32::MAX,
            sealing_public_key: blob(5),
            sealing_private_key: blob(6).into(),
            master_slot: managed.then(|| blob(7).into()),
            created_at: t0(),
        },
        owner: owner.clone(),
        owner_slot: blob(8).into(),
        first_key: api_key(&id),
        audit: vec![audit(Some(&id), "vault.create")],
    }
}

/// An account with a vault, created in `store`.
pub async fn seeded_vault(store: &Arc<dyn Store>) -> (AccountId, VaultRecord) {
    let n: u32 = rng().r#gen();
    let acc = account(&format!("owner{n}@example.com"));
    store.create_account(acc.clone()).await.unwrap();
    let v = vault(&acc.id, false);
    let record = v.vault.clone();
    store.create_vault(v).await.unwrap();
    (acc.id, record)
}

pub fn app(vault: &VaultId, key: &str) -> AppRecord {
    AppRecord {
        id: AppId::generate(&mut rng()),
        vault_id: vault.clone(),
        key: AppKey::parse(key).unwrap(),
        provider_key: "github".into(),
        client_id: "client-123".into(),
        client_secret: blob(9).into(),
        scopes: Scopes::parse(&["repo", "read:user"]).unwrap(),
        status: AppStatus::Active,
        created_at: t0(),
        updated_at: at(1),
    }
}

pub async fn seeded_app(store: &Arc<dyn Store>, vault: &VaultId, key: &str) -> AppRecord {
    let a = app(vault, key);
    store
        .create_app(a.clone(), audit(Some(vault), "app.create"))
        .await
        .unwrap();
    a
}

pub fn tokens(tag: u8, at_ms: i64) -> TokenWrite {
    TokenWrite {
        token_set: blob(tag).into(),
        token_format: TokenFormat::DataKey,
        expires_at: Some(at(at_ms + 3_600_000)),
        has_refresh: true,
        scopes: Scopes::parse(&["repo"]).unwrap(),
        at: at(at_ms),
        schedule: Schedule {
            next_refresh_at: Some(at(at_ms + 3_000_000)),
            due_at: Some(at(at_ms + 3_000_000)),
        },
    }
}

/// A refresh refused for good, judged at `at_ms`.
pub fn needs_reauth(at_ms: i64) -> HealthChange {
    HealthChange {
        status: ConnectionStatus::NeedsReauth,
        status_reason: Some("the provider refused the refresh token".into()),
        schedule: Schedule::default(),
        failures: 0,
        expiring_notified_at: None,
        at: at(at_ms),
    }
}

pub fn upsert(vault: &VaultId, id: &str, app: &AppId, tokens: TokenWrite) -> ConnectionUpsert {
    ConnectionUpsert {
        vault_id: vault.clone(),
        id: ConnectionId::parse(id).unwrap(),
        app_id: app.clone(),
        tokens,
        events: None,
    }
}

/// A vault, an app and one connection (`conn-1`, version 1).
pub async fn seeded_connection(store: &Arc<dyn Store>) -> (VaultRecord, AppRecord, ConnectionId) {
    let (_, v) = seeded_vault(store).await;
    let a = seeded_app(store, &v.id, "github").await;
    let c = upsert(&v.id, "conn-1", &a.id, tokens(10, 0));
    let id = c.id.clone();
    store
        .insert_connection(c, audit(Some(&v.id), "connection.import"))
        .await
        .unwrap();
    (v, a, id)
}

pub fn session(
    vault: &VaultId,
    app: &AppId,
    link: Option<ConnectLinkRecord>,
) -> ConnectSessionRecord {
    let mut r = rng();
    let state: [u8; 16] = r.r#gen();
    ConnectSessionRecord {
        id: ConnectSessionId::generate(&mut r),
        vault_id: vault.clone(),
        app_id: app.clone(),
        connection_id: ConnectionId::parse("conn-new").unwrap(),
        state_hash: state.to_vec().into(),
        secrets: blob(11).into(),
        scopes: Scopes::parse(&["repo"]).unwrap(),
        return_to: None,
        status: ConnectStatus::Pending,
        error: None,
        created_by: "key_creator".into(),
        created_at: t0(),
        expires_at: at(600_000),
        finished_at: None,
        link,
    }
}

pub fn link(expires_ms: i64) -> ConnectLinkRecord {
    let hash: [u8; 32] = rng().r#gen();
    ConnectLinkRecord {
        hash: hash.to_vec().into(),
        sealed_url: blob(12).into(),
        expires_at: at(expires_ms),
        spent_at: None,
        binding_hash: None,
    }
}

/// How many records a chain holds.
pub async fn chain_len(store: &Arc<dyn Store>, chain: &str) -> usize {
    store.audit_chain(chain, 0, 10_000).await.unwrap().len()
}
