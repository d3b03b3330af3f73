//! Webhook endpoints (admin role): register, list, change, delete, rotate the signing
//! secret, send a test event, read the delivery log. Signing secrets are encrypted
//! under the server key, which is not in the database: a stolen database can neither
//! read them nor forge a delivery.

use chrono::{DateTime, Duration, Utc};
use secrecy::SecretString;
use serde_json::json;
use tokenwarden_crypto::{Binding, Purpose, ServerKey};
use tokenwarden_domain::{Role, VaultId};
use tokenwarden_store::{
    AttemptRecord, Ciphertext, NewWebhookEndpoint, WebhookEndpointRecord, WebhookEndpointUpdate,
    WebhookStore,
};
use tokenwarden_webhooks::{EventType, WebhookSecret, validate_url};
use tracing::info;
use zeroize::Zeroizing;

use crate::apps::record_for;
use crate::audit::RequestContext;
use crate::lifecycle::new_event;
use crate::{Caller, ServiceError, ServiceResult, Services};

/// How long the secret before a rotation still signs deliveries.
pub const ROTATION_OVERLAP_HOURS: i64 = 24;
/// The most entries one page of the delivery log answers.
pub const MAX_DELIVERY_PAGE: u32 = 500;
const MAX_DESCRIPTION: usize = 500;
const MAX_ENDPOINTS_PER_VAULT: usize = 50;

/// An endpoint as listed (never its secret).
#[derive(Debug, Clone)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    /// `None`: every event type.
    pub events: Option<Vec<String>>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<WebhookEndpointRecord> for WebhookView {
    fn from(r: WebhookEndpointRecord) -> Self {
        Self {
            id: r.id,
            url: r.url,
            events: r.events,
            enabled: r.enabled,
            disabled_reason: r.disabled_reason,
            description: r.description,
            created_at: r.created_at,
        }
    }
}

/// A new endpoint with its secret, shown this once.
#[derive(Debug)]
pub struct CreatedWebhook {
    pub view: WebhookView,
    pub secret: SecretString,
}

/// `POST /v1/webhooks`, validated by the caller's parse of the body.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
}

/// `PATCH /v1/webhooks/{id}`.
#[derive(Debug, Clone, Default)]
pub struct WebhookChanges {
    pub url: Option<String>,
    /// `Some(None)`: every type from now on.
    pub events: Option<Option<Vec<String>>>,
    pub enabled: Option<bool>,
    pub description: Option<Option<String>>,
}

/// The delivery log's entry.
pub type DeliveryView = AttemptRecord;

/// The binding of an endpoint's secret: a ciphertext moved to another endpoint or vault
/// does not open.
fn secret_binding<'a>(vault: &'a VaultId, endpoint: &'a str) -> Binding<'a> {
    Binding::new(Purpose::WebhookSecret, vault, endpoint)
}

fn endpoint_id() -> String {
    crate::random_hex_id::<12>("wh_")
}

/// Endpoint ids are ours (`wh_` + 24 hex digits): anything else cannot exist.
fn check_id(id: &str) -> ServiceResult<()> {
    let ok =
        id.len() == 27 && id.starts_with("wh_") && id[3..].bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(())
    } else {
        Err(ServiceError::NotFound("webhook"))
    }
}

/// The event types of a filter: known, without repeats; an empty list is refused (omit
/// `events` for every type).
fn parse_events(events: Option<Vec<String>>) -> ServiceResult<Option<Vec<String>>> {
    let Some(list) = events else {
        return Ok(None);
    };
    if list.is_empty() {
        return Err(ServiceError::InvalidRequest(
            "events must name at least one event type; omit it to receive every type".into(),
        ));
    }
    let mut types = Vec::with_capacity(list.len());
    for name in list {
        let t = EventType::parse(&name).map_err(|_| {
            let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            ServiceError::InvalidRequest(format!(
                "unknown event type; the types are {}",
                known.join(", ")
            ))
        })?;
        let name = t.as_str().to_owned();
        if !types.contains(&name) {
            types.push(name);
        }
    }
    Ok(Some(types))
}

fn check_description(d: Option<String>) -> ServiceResult<Option<String>> {
    match d {
        Some(d) if d.chars().count() > MAX_DESCRIPTION || d.chars().any(char::is_control) => {
            Err(ServiceError::InvalidRequest(format!(
                "description must be at most {MAX_DESCRIPTION} characters without control characters"
            )))
        }
        d => Ok(d),
    }
}

impl Services {
    fn webhooks_store(&self) -> &dyn WebhookStore {
        &*self.store
    }

    fn server_key(&self) -> ServiceResult<&ServerKey> {
        self.server_key.as_deref().ok_or_else(|| {
            ServiceError::Conflict(
                "webhooks need a server key: configure TOKENWARDEN_MASTER_KEY or TOKENWARDEN_SERVER_KEY_FILE".into(),
            )
        })
    }

    fn check_url(&self, url: &str) -> ServiceResult<String> {
        validate_url(url, self.config.allow_loopback_providers)
            .map(|u| u.to_string())
            .map_err(|e| ServiceError::InvalidRequest(e.to_string()))
    }

    fn seal_secret(
        &self,
        vault: &VaultId,
        endpoint: &str,
        secret: &WebhookSecret,
    ) -> ServiceResult<Ciphertext> {
        let key = self.server_key()?;
        Ok(key
            .encrypt(&secret_binding(vault, endpoint), &secret.to_bytes())
            .into())
    }

    /// Opens an endpoint's secret for signing.
    pub(crate) fn open_secret(
        &self,
        vault: &VaultId,
        endpoint: &str,
        sealed: &Ciphertext,
    ) -> ServiceResult<WebhookSecret> {
        let key = self.server_key()?;
        let plain: Zeroizing<Vec<u8>> = key
            .decrypt(&secret_binding(vault, endpoint), sealed.as_bytes())
            .map_err(ServiceError::internal)?;
        WebhookSecret::from_bytes(&plain).map_err(ServiceError::internal)
    }

    pub async fn create_webhook(
        &self,
        caller: &Caller,
        request: NewWebhook,
        ctx: &RequestContext,
    ) -> ServiceResult<CreatedWebhook> {
        caller.require(Role::Admin)?;
        let url = self.check_url(&request.url)?;
        let events = parse_events(request.events)?;
        let description = check_description(request.description)?;
        let existing = self
            .webhooks_store()
            .list_webhooks(&caller.vault_id)
            .await?;
        if existing.len() >= MAX_ENDPOINTS_PER_VAULT {
            return Err(ServiceError::Conflict(format!(
                "a vault has at most {MAX_ENDPOINTS_PER_VAULT} webhook endpoints"
            )));
        }
        let id = endpoint_id();
        let secret = WebhookSecret::generate();
        let sealed = self.seal_secret(&caller.vault_id, &id, &secret)?;
        let now = self.clock.now();
        let audit = record_for(caller, ctx, now, "webhook.create", &id);
        self.webhooks_store()
            .create_webhook(
                NewWebhookEndpoint {
                    id: id.clone(),
                    vault_id: caller.vault_id.clone(),
                    url,
                    description,
                    events,
                    secret: sealed,
                    at: now,
                },
                audit,
            )
            .await?;
        info!(vault.id = %caller.vault_id, webhook.id = %id, "webhook endpoint created");
        let stored = self
            .webhooks_store()
            .webhook(&caller.vault_id, &id)
            .await?
            .ok_or(ServiceError::NotFound("webhook"))?;
        Ok(CreatedWebhook {
            view: stored.into(),
            secret: secret.as_text(),
        })
    }

    pub async fn list_webhooks(&self, caller: &Caller) -> ServiceResult<Vec<WebhookView>> {
        caller.require(Role::Admin)?;
        let list = self
            .webhooks_store()
            .list_webhooks(&caller.vault_id)
            .await?;
        Ok(list.into_iter().map(WebhookView::from).collect())
    }

    pub async fn update_webhook(
        &self,
        caller: &Caller,
        id: &str,
        changes: WebhookChanges,
        ctx: &RequestContext,
    ) -> ServiceResult<WebhookView> {
        caller.require(Role::Admin)?;
        check_id(id)?;
        let url = changes
            .url
            .as_deref()
            .map(|u| self.check_url(u))
            .transpose()?;
        let events = match changes.events {
            None => None,
            Some(events) => Some(parse_events(events)?),
        };
        let description = match changes.description {
            None => None,
            Some(d) => Some(check_description(d)?),
        };
        let now = self.clock.now();
        let audit = record_for(caller, ctx, now, "webhook.update", id);
        let updated = self
            .webhooks_store()
            .update_webhook(
                &caller.vault_id,
                id,
                WebhookEndpointUpdate {
                    url,
                    events,
                    enabled: changes.enabled,
                    description,
                },
                now,
                audit,
            )
            .await?
            .ok_or(ServiceError::NotFound("webhook"))?;
        Ok(updated.into())
    }

    pub async fn delete_webhook(
        &self,
        caller: &Caller,
        id: &str,
        ctx: &RequestContext,
    ) -> ServiceResult<()> {
        caller.require(Role::Admin)?;
        check_id(id)?;
        let audit = record_for(caller, ctx, self.clock.now(), "webhook.delete", id);
        if !self
            .webhooks_store()
            .delete_webhook(&caller.vault_id, id, audit)
            .await?
        {
            return Err(ServiceError::NotFound("webhook"));
        }
        info!(vault.id = %caller.vault_id, webhook.id = %id, "webhook endpoint deleted");
        Ok(())
    }

    /// A new signing secret; the old one keeps signing (beside it) for 24 hours.
    pub async fn rotate_webhook_secret(
        &self,
        caller: &Caller,
        id: &str,
        ctx: &RequestContext,
    ) -> ServiceResult<SecretString> {
        caller.require(Role::Admin)?;
        check_id(id)?;
        let secret = WebhookSecret::generate();
        let sealed = self.seal_secret(&caller.vault_id, id, &secret)?;
        let now = self.clock.now();
        let audit = record_for(caller, ctx, now, "webhook.rotate_secret", id);
        if !self
            .webhooks_store()
            .rotate_webhook_secret(
                &caller.vault_id,
                id,
                sealed,
                now + Duration::hours(ROTATION_OVERLAP_HOURS),
                now,
                audit,
            )
            .await?
        {
            return Err(ServiceError::NotFound("webhook"));
        }
        info!(vault.id = %caller.vault_id, webhook.id = %id, "webhook secret rotated");
        Ok(secret.as_text())
    }

    /// Queues a `webhook.test` event for this endpoint only; answers its event id.
    pub async fn test_webhook(
        &self,
        caller: &Caller,
        id: &str,
        ctx: &RequestContext,
    ) -> ServiceResult<String> {
        caller.require(Role::Admin)?;
        check_id(id)?;
        let endpoint = self
            .webhooks_store()
            .webhook(&caller.vault_id, id)
            .await?
            .ok_or(ServiceError::NotFound("webhook"))?;
        if !endpoint.enabled {
            return Err(ServiceError::Conflict(
                "the endpoint is disabled; enable it first".into(),
            ));
        }
        let now = self.clock.now();
        let event = new_event(
            caller.vault_id.clone(),
            EventType::WebhookTest,
            json!({ "webhook_id": id }),
            now,
        );
        let event_id = event.id.clone();
        if !self.webhooks_store().emit_event_to(event, id).await? {
            return Err(ServiceError::NotFound("webhook"));
        }
        self.lifecycle_metrics.events(1);
        let audit = record_for(caller, ctx, now, "webhook.test", id);
        self.audit_batch.append(&self.store, audit).await?;
        Ok(event_id)
    }

    pub async fn webhook_deliveries(
        &self,
        caller: &Caller,
        id: &str,
        limit: Option<u32>,
    ) -> ServiceResult<Vec<DeliveryView>> {
        caller.require(Role::Admin)?;
        check_id(id)?;
        let limit = limit.unwrap_or(50);
        if limit == 0 || limit > MAX_DELIVERY_PAGE {
            return Err(ServiceError::InvalidRequest(format!(
                "limit must be between 1 and {MAX_DELIVERY_PAGE}"
            )));
        }
        if self
            .webhooks_store()
            .webhook(&caller.vault_id, id)
            .await?
            .is_none()
        {
            return Err(ServiceError::NotFound("webhook"));
        }
        Ok(self
            .webhooks_store()
            .list_attempts(&caller.vault_id, id, limit)
            .await?)
    }

    /// Writes events that no other change carries (key issued or revoked, a connect
    /// session failed). A failure is logged, never the caller's error: the change it
    /// reports has happened.
    pub(crate) async fn emit(&self, events: Vec<tokenwarden_store::NewEvent>) {
        let n = events.len();
        match self.webhooks_store().emit_events(&events).await {
            Ok(()) => self.lifecycle_metrics.events(n),
            Err(e) => tracing::warn!(error = %e, "could not write webhook events"),
        }
    }
}
