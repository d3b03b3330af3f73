//! The provider's shared state: run-time settings, issued codes and tokens,
//! counters and the request log. Every decision that must be atomic (a code
//! is used once, a refresh token rotates once) happens under one lock.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use rand::RngCore as _;
use tokio::sync::watch;

use crate::behaviour::{Fault, FaultScope, Quirks};
use crate::clock::Clock;
use crate::config::{AuthorizeMode, ClientAuthPolicy, ClientRegistration, FakeProviderConfig};
use crate::keys::SigningKey;
use crate::records::{AuthorizationRecord, Counters, GrantId, GrantSnapshot, RecordedRequest};

/// Prefix of authorization codes.
pub const CODE_PREFIX: &str = "fake_code_";
/// Prefix of access tokens.
pub const ACCESS_TOKEN_PREFIX: &str = "fake_at_";
/// Prefix of refresh tokens.
pub const REFRESH_TOKEN_PREFIX: &str = "fake_rt_";
pub(crate) const CONSENT_PREFIX: &str = "fake_consent_";

/// A random, recognisable value: the prefix and 192 random bits.
pub(crate) fn random_value(prefix: &str) -> String {
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A random secret value: the prefix, the configured marker and 192 random bits.
pub(crate) fn secret_value(prefix: &str, marker: &str) -> String {
    if marker.is_empty() {
        random_value(prefix)
    } else {
        random_value(&format!("{prefix}{marker}_"))
    }
}

/// Locks a mutex, ignoring poisoning: every critical section leaves the data
/// consistent, and a panicking test must not wedge the others.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Everything the handlers and the handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Base URL without a trailing slash; also the issuer.
    pub base_url: String,
    pub clients: Vec<ClientRegistration>,
    pub code_ttl: Duration,
    pub oidc: bool,
    pub require_pkce: bool,
    pub hang_duration: Duration,
    pub user: crate::config::FakeUser,
    pub key: SigningKey,
    /// Every time the provider reads (expiry, validation, the request log).
    pub clock: Clock,
    pub settings: Mutex<Settings>,
    pub store: Mutex<Store>,
    pub counters: Mutex<Counters>,
    pub log: Mutex<VecDeque<RecordedRequest>>,
    pub log_capacity: usize,
    /// See [`FakeProviderConfig::secret_marker`].
    pub secret_marker: String,
    /// Becomes `true` when the provider shuts down (releases hung requests).
    pub shutdown: watch::Sender<bool>,
}

/// How long refresh tokens live; `None` is forever (the default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RefreshLifetimes {
    /// Dead once unused (since issue or last use) for longer than this.
    pub idle: Option<TimeDelta>,
    /// Dead once older than this since issue, used or not.
    pub absolute: Option<TimeDelta>,
}

/// Behaviour a test may change while the provider runs.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub quirks: Quirks,
    pub faults: Vec<Fault>,
    pub token_latency: Duration,
    pub authorize_mode: AuthorizeMode,
    pub client_auth: ClientAuthPolicy,
    pub access_token_ttl: Duration,
    pub rotate_refresh_tokens: bool,
    pub refresh_lifetimes: RefreshLifetimes,
    pub persona: Option<crate::persona::Persona>,
    /// The next this many `/api` calls answer 401 whatever their token.
    pub api_unauthorized: u32,
}

impl Shared {
    pub(crate) fn new(config: FakeProviderConfig, base_url: String, key: SigningKey) -> Self {
        let settings = Settings {
            quirks: Quirks::default(),
            faults: Vec::new(),
            token_latency: Duration::ZERO,
            authorize_mode: config.authorize_mode,
            client_auth: config.client_auth,
            access_token_ttl: config.access_token_ttl,
            rotate_refresh_tokens: config.rotate_refresh_tokens,
            refresh_lifetimes: RefreshLifetimes::default(),
            persona: None,
            api_unauthorized: 0,
        };
        Self {
            base_url,
            clients: config.clients,
            code_ttl: config.code_ttl,
            oidc: config.oidc,
            require_pkce: config.require_pkce,
            hang_duration: config.hang_duration,
            user: config.user,
            key,
            clock: Clock::default(),
            settings: Mutex::new(settings),
            store: Mutex::new(Store {
                secret_marker: config.secret_marker.clone(),
                ..Store::default()
            }),
            counters: Mutex::new(Counters::default()),
            log: Mutex::new(VecDeque::new()),
            log_capacity: config.request_log_capacity,
            secret_marker: config.secret_marker.clone(),
            shutdown: watch::Sender::new(false),
        }
    }

    /// The provider's time: real time moved by [`crate::FakeProvider::advance_secs`].
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub(crate) fn issuer(&self) -> &str {
        &self.base_url
    }

    pub(crate) fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub(crate) fn client(&self, client_id: &str) -> Option<&ClientRegistration> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }

    pub(crate) fn settings(&self) -> Settings {
        lock(&self.settings).clone()
    }

    /// Appends to the request log, dropping the oldest entry when full.
    pub(crate) fn log_request(&self, entry: RecordedRequest) {
        if self.log_capacity == 0 {
            return;
        }
        let mut log = lock(&self.log);
        while log.len() >= self.log_capacity {
            log.pop_front();
        }
        log.push_back(entry);
    }

    pub(crate) fn count(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut lock(&self.counters));
    }

    /// Takes the first fault that applies to a token call of this grant type.
    pub(crate) fn take_fault(&self, grant_type: Option<&str>) -> Option<crate::FaultKind> {
        let mut settings = lock(&self.settings);
        let index = settings.faults.iter().position(|f| match f.scope {
            FaultScope::AllGrants => true,
            FaultScope::RefreshOnly => grant_type == Some("refresh_token"),
            FaultScope::CodeExchangeOnly => grant_type == Some("authorization_code"),
        })?;
        let fault = &mut settings.faults[index];
        let kind = fault.kind.clone();
        match &mut fault.times {
            None => {}
            Some(n) if *n > 1 => *n -= 1,
            Some(_) => {
                settings.faults.remove(index);
            }
        }
        Some(kind)
    }
}

/// A code waiting to be exchanged.
#[derive(Clone, Debug)]
pub(crate) struct CodeRecord {
    pub client_id: String,
    /// The redirect URI the response went to.
    pub redirect_uri: String,
    /// Whether the authorize request named it (then the token request must
    /// repeat it, RFC 6749 §4.1.3).
    pub redirect_uri_sent: bool,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub expires_at: DateTime<Utc>,
    /// Set on the first exchange attempt; a second attempt is a replay.
    pub used: bool,
    /// The grant the first (successful) exchange created.
    pub grant: Option<GrantId>,
}

/// An authorization request waiting on the consent page.
#[derive(Clone, Debug)]
pub(crate) struct PendingConsent {
    pub record: AuthorizationRecord,
    pub redirect_uri: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub(crate) struct Grant {
    pub client_id: String,
    pub scope: String,
    pub code: String,
    pub access_tokens: Vec<String>,
    pub refresh_tokens: Vec<String>,
    pub id_tokens: Vec<String>,
    pub current_refresh: Option<String>,
    pub revoked: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct AccessRecord {
    pub grant: GrantId,
    pub expires_at: DateTime<Utc>,
    pub revoked: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RefreshStatus {
    Active,
    /// Replaced by a newer token; presenting it again is reuse.
    Rotated,
    Revoked,
}

#[derive(Clone, Debug)]
pub(crate) struct RefreshRecord {
    pub grant: GrantId,
    pub status: RefreshStatus,
    pub issued_at: DateTime<Utc>,
    /// Issue time until the token is first used to refresh without rotation.
    pub last_used_at: DateTime<Utc>,
}

impl RefreshRecord {
    /// Whether the token died of idleness or age by `now`. Lifetimes are read at
    /// each refresh, so changing them applies to tokens already issued.
    pub(crate) fn is_dead(&self, now: DateTime<Utc>, lifetimes: RefreshLifetimes) -> bool {
        let idle_dead = lifetimes
            .idle
            .is_some_and(|idle| now.signed_duration_since(self.last_used_at) > idle);
        let age_dead = lifetimes
            .absolute
            .is_some_and(|absolute| now.signed_duration_since(self.issued_at) > absolute);
        idle_dead || age_dead
    }
}

/// A valid access token's grant.
#[derive(Clone, Debug)]
pub(crate) struct TokenOwner {
    pub grant: GrantId,
    pub client_id: String,
    pub scope: String,
}

/// Codes, grants and tokens.
#[derive(Debug, Default)]
pub(crate) struct Store {
    next_grant: u64,
    /// See [`FakeProviderConfig::secret_marker`].
    pub secret_marker: String,
    pub codes: HashMap<String, CodeRecord>,
    pub consents: HashMap<String, PendingConsent>,
    pub grants: BTreeMap<GrantId, Grant>,
    pub access: HashMap<String, AccessRecord>,
    pub refresh: HashMap<String, RefreshRecord>,
    pub authorizations: Vec<AuthorizationRecord>,
}

impl Store {
    pub(crate) fn new_grant(&mut self, code: &str, record: &CodeRecord) -> GrantId {
        self.next_grant += 1;
        let id = GrantId(self.next_grant);
        self.grants.insert(
            id,
            Grant {
                client_id: record.client_id.clone(),
                scope: record.scope.clone(),
                code: code.to_owned(),
                access_tokens: Vec::new(),
                refresh_tokens: Vec::new(),
                id_tokens: Vec::new(),
                current_refresh: None,
                revoked: false,
            },
        );
        id
    }

    /// Revokes a grant and every token issued for it.
    pub(crate) fn revoke_grant(&mut self, id: GrantId) {
        let Some(grant) = self.grants.get_mut(&id) else {
            return;
        };
        grant.revoked = true;
        grant.current_refresh = None;
        for token in &grant.access_tokens {
            if let Some(at) = self.access.get_mut(token) {
                at.revoked = true;
            }
        }
        for token in &grant.refresh_tokens {
            if let Some(rt) = self.refresh.get_mut(token) {
                rt.status = RefreshStatus::Revoked;
            }
        }
    }

    /// Issues an access token for a grant.
    pub(crate) fn issue_access(
        &mut self,
        id: GrantId,
        ttl_secs: i64,
        now: DateTime<Utc>,
    ) -> String {
        let token = secret_value(ACCESS_TOKEN_PREFIX, &self.secret_marker);
        self.access.insert(
            token.clone(),
            AccessRecord {
                grant: id,
                expires_at: now + chrono::Duration::seconds(ttl_secs),
                revoked: false,
            },
        );
        if let Some(grant) = self.grants.get_mut(&id) {
            grant.access_tokens.push(token.clone());
        }
        token
    }

    /// Issues a refresh token for a grant, rotating out the current one.
    pub(crate) fn issue_refresh(&mut self, id: GrantId, now: DateTime<Utc>) -> String {
        let token = secret_value(REFRESH_TOKEN_PREFIX, &self.secret_marker);
        self.refresh.insert(
            token.clone(),
            RefreshRecord {
                grant: id,
                status: RefreshStatus::Active,
                issued_at: now,
                last_used_at: now,
            },
        );
        if let Some(grant) = self.grants.get_mut(&id) {
            if let Some(old) = grant.current_refresh.replace(token.clone())
                && let Some(rt) = self.refresh.get_mut(&old)
            {
                rt.status = RefreshStatus::Rotated;
            }
            grant.refresh_tokens.push(token.clone());
        }
        token
    }

    /// Records a refresh that kept `token`, which restarts its idle time.
    pub(crate) fn touch_refresh(&mut self, token: &str, now: DateTime<Utc>) {
        if let Some(record) = self.refresh.get_mut(token) {
            record.last_used_at = now;
        }
    }

    /// The grant of a currently valid (known, unexpired, unrevoked) access token.
    pub(crate) fn validate_access(&self, token: &str, now: DateTime<Utc>) -> Option<TokenOwner> {
        let record = self.access.get(token)?;
        if record.revoked || record.expires_at <= now {
            return None;
        }
        let grant = self.grants.get(&record.grant)?;
        if grant.revoked {
            return None;
        }
        Some(TokenOwner {
            grant: record.grant,
            client_id: grant.client_id.clone(),
            scope: grant.scope.clone(),
        })
    }

    pub(crate) fn snapshot(&self, id: GrantId) -> Option<GrantSnapshot> {
        let g = self.grants.get(&id)?;
        Some(GrantSnapshot {
            id,
            client_id: g.client_id.clone(),
            scope: g.scope.clone(),
            code: g.code.clone(),
            access_token: g.access_tokens.last().cloned(),
            refresh_token: g.current_refresh.clone(),
            access_tokens: g.access_tokens.clone(),
            refresh_tokens: g.refresh_tokens.clone(),
            id_tokens: g.id_tokens.clone(),
            revoked: g.revoked,
        })
    }
}
