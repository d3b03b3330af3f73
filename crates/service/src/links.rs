//! Connect links (docs/design.md, "Connect"): a one-time URL a person opens without an API
//! key. Opening it (GET/HEAD) shows what will be connected and spends nothing, so
//! link-preview bots and mail scanners are harmless; pressing its button (POST) spends
//! it once, binds the flow to that browser with a cookie, and redirects to the provider.
//!
//! The database holds only the link's hash and the authorization URL (which carries the
//! state) encrypted under a key derived from the link, so the database alone cannot
//! start the flow, and the callback of a link-started flow demands the binding cookie,
//! so a forwarded link cannot be finished in another browser.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tokenwarden_crypto::{Binding, DataKey, Purpose};
use tokenwarden_domain::{ConnectSessionId, VaultId};
use tokenwarden_store::{
    Actor, ConnectLinkRecord, ConnectSessionRecord, ConnectStatus, LookupHash,
};
use tracing::{info, warn};

use crate::audit::{RequestContext, record};
use crate::session_secrets::SESSION_LIFETIME_MINUTES;
use crate::{ServiceError, ServiceResult, Services};

/// A link token: 32 random bytes, base64url (43 characters).
const LINK_TOKEN_LEN: usize = 43;

/// A new link for a session: the token goes into the URL, the record into the store.
pub(crate) struct NewLink {
    pub token: SecretString,
    pub record: ConnectLinkRecord,
}

fn random_token() -> SecretString {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    SecretString::from(URL_SAFE_NO_PAD.encode(bytes))
}

fn link_hash(token: &str) -> LookupHash {
    let mut h = Sha256::new();
    h.update(b"tokenwarden/connect-link/v1\0");
    h.update(token.as_bytes());
    LookupHash::new(h.finalize().to_vec())
}

fn binding_hash(cookie: &str) -> LookupHash {
    let mut h = Sha256::new();
    h.update(b"tokenwarden/connect-binding/v1\0");
    h.update(cookie.as_bytes());
    LookupHash::new(h.finalize().to_vec())
}

/// The link page's form token: what its hidden `form_token` field holds, tied to the
/// link and to the random form cookie the page set in that browser (double submit).
fn form_token(token: &str, form_cookie: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"tokenwarden/connect-form/v1\0");
    h.update(token.as_bytes());
    h.update(b"\0");
    h.update(form_cookie.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

/// The name of the form cookie of a link's page: one per link (so two link pages open
/// in one browser do not displace each other's), named after a hash of the link that
/// says nothing about it. `__Host-` with an https public URL, as the binding cookie.
fn form_cookie_name(token: &str, secure: bool) -> String {
    let mut h = Sha256::new();
    h.update(b"tokenwarden/connect-form-cookie/v1\0");
    h.update(token.as_bytes());
    let tag = URL_SAFE_NO_PAD.encode(&h.finalize()[..9]);
    if secure {
        format!("__Host-tw_form_{tag}")
    } else {
        format!("tw_form_{tag}")
    }
}

fn link_key(token: &str) -> DataKey {
    DataKey::derive_from_secret(token.as_bytes(), b"tokenwarden/connect-link/v1")
}

fn url_binding<'a>(vault: &'a VaultId, session: &'a ConnectSessionId) -> Binding<'a> {
    Binding::new(Purpose::ConnectLink, vault, session.as_str())
}

/// Only well-formed tokens reach the database.
fn well_formed(token: &str) -> bool {
    token.len() == LINK_TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The name of the cookie that binds a link-started flow to its browser. With an
/// https public URL it is a `__Host-` cookie (Secure, Path=/, no Domain); plain-HTTP
/// development gets the same cookie without the prefix, which browsers accept there.
pub fn binding_cookie_name(session: &ConnectSessionId, secure: bool) -> String {
    if secure {
        format!("__Host-tw_connect_{session}")
    } else {
        format!("tw_connect_{session}")
    }
}

pub(crate) fn new_link(
    vault: &VaultId,
    session: &ConnectSessionId,
    authorization_url: &str,
    expires_at: DateTime<Utc>,
) -> NewLink {
    let token = random_token();
    let sealed_url = link_key(token.expose_secret())
        .encrypt(&url_binding(vault, session), authorization_url.as_bytes());
    NewLink {
        record: ConnectLinkRecord {
            hash: link_hash(token.expose_secret()),
            sealed_url: sealed_url.into(),
            expires_at,
            spent_at: None,
            binding_hash: None,
        },
        token,
    }
}

/// Checks a callback of a link-started flow against the cookies its browser sent.
/// A session whose link was never spent (the API caller used `authorization_url`
/// itself) needs no cookie.
pub(crate) fn binding_holds(
    session: &ConnectSessionRecord,
    cookies: &[(String, String)],
    secure: bool,
) -> bool {
    let Some(expected) = session.link.as_ref().and_then(|l| l.binding_hash.as_ref()) else {
        return true;
    };
    let name = binding_cookie_name(&session.id, secure);
    cookies.iter().filter(|(n, _)| *n == name).any(|(_, v)| {
        use subtle::ConstantTimeEq;
        bool::from(binding_hash(v).as_bytes().ct_eq(expected.as_bytes()))
    })
}

/// Why a link can no longer be used; the page says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkGone {
    /// Its button was already pressed.
    Used,
    /// Its time ran out before anyone pressed it.
    Expired,
    /// Its session ended another way (completed or failed through the API's URL).
    Finished,
}

/// What the link page shows.
#[derive(Debug, Clone)]
pub struct LinkPage {
    pub vault_name: String,
    pub app: String,
    pub provider: String,
    pub scopes: Vec<String>,
    pub expires_at: DateTime<Utc>,
    /// The provider's authorization endpoint origin: the page's form may redirect there.
    pub provider_origin: String,
    /// The page's form cookie (HttpOnly, SameSite=Strict, Path=/, for `form_max_age_secs`)
    /// and the hidden `form_token` field that must come back with it.
    pub form_cookie_name: String,
    pub form_cookie_value: SecretString,
    pub form_token: SecretString,
    pub form_max_age_secs: i64,
    /// Whether the public URL is https (the cookie is then Secure).
    pub secure: bool,
}

/// The link page's answer.
#[derive(Debug, Clone)]
pub enum LinkView {
    Open(LinkPage),
    Gone(LinkGone),
    Unknown,
}

/// A spent link: where to send the browser and the cookie that binds the flow to it.
pub struct SpentLink {
    pub location: String,
    pub cookie_name: String,
    pub cookie_value: SecretString,
    pub cookie_max_age_secs: i64,
    pub secure: bool,
}

impl std::fmt::Debug for SpentLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpentLink")
            .field("cookie_name", &self.cookie_name)
            .finish_non_exhaustive()
    }
}

/// The authorization URL sealed under the link's own key.
fn sealed_url(
    token: &str,
    session: &ConnectSessionRecord,
    link: &ConnectLinkRecord,
) -> ServiceResult<String> {
    let plain = link_key(token)
        .decrypt(
            &url_binding(&session.vault_id, &session.id),
            link.sealed_url.as_bytes(),
        )
        .map_err(|e| {
            warn!(session.id = %session.id, "a connect link's URL does not decrypt");
            ServiceError::from(e)
        })?;
    String::from_utf8(plain.as_bytes().to_vec()).map_err(ServiceError::internal)
}

fn gone(
    session: &ConnectSessionRecord,
    link: &ConnectLinkRecord,
    now: DateTime<Utc>,
) -> Option<LinkGone> {
    if link.spent_at.is_some() {
        Some(LinkGone::Used)
    } else if session.status != ConnectStatus::Pending {
        Some(LinkGone::Finished)
    } else if link.expires_at <= now {
        Some(LinkGone::Expired)
    } else {
        None
    }
}

impl Services {
    pub(crate) fn links_secure(&self) -> bool {
        self.config.public_url.starts_with("https://")
    }

    /// `GET /connect/{link}`: what the link would connect. Changes nothing.
    pub async fn connect_link_page(&self, token: &str) -> ServiceResult<LinkView> {
        if !well_formed(token) {
            return Ok(LinkView::Unknown);
        }
        let Some(view) = self.connect_store().connect_link(&link_hash(token)).await? else {
            return Ok(LinkView::Unknown);
        };
        let Some(link) = &view.session.link else {
            return Ok(LinkView::Unknown);
        };
        let now = self.clock.now();
        if let Some(why) = gone(&view.session, link, now) {
            return Ok(LinkView::Gone(why));
        }
        let custom = self
            .store
            .provider(&view.session.vault_id, &view.app.provider_key)
            .await?;
        let def = self.provider_definition(
            &view.app.provider_key,
            custom.as_ref().map(|p| p.spec.as_str()),
        )?;
        let secure = self.links_secure();
        let form_cookie = random_token();
        let form_token = SecretString::from(form_token(token, form_cookie.expose_secret()));
        Ok(LinkView::Open(LinkPage {
            vault_name: view.vault_name,
            app: view.app.key.to_string(),
            provider: def.spec().display_name.clone(),
            scopes: view.session.scopes.as_slice().to_vec(),
            expires_at: link.expires_at,
            provider_origin: self.link_target_origin(token, &view.session, link)?,
            form_cookie_name: form_cookie_name(token, secure),
            form_cookie_value: form_cookie,
            form_token,
            form_max_age_secs: (link.expires_at - now).num_seconds().max(1),
            secure,
        }))
    }

    /// Whether a `POST /connect/{link}` comes from the link's own page in this browser
    /// (the page's CSRF defence): an `Origin` header, when sent, must be the public URL's
    /// origin, a `Sec-Fetch-Site`, when sent, `same-origin` or `none`, and the form's
    /// `form_token` must match the page's form cookie among `cookies`. Answers why not,
    /// for the log; it holds no secret. Touches nothing, so a refused press spends nothing.
    pub fn connect_link_form_holds(
        &self,
        token: &str,
        origin: Option<&str>,
        sec_fetch_site: Option<&str>,
        submitted: Option<&str>,
        cookies: &[(String, String)],
    ) -> Result<(), &'static str> {
        if let Some(origin) = origin {
            let ours = url::Url::parse(&self.config.public_url)
                .map(|u| u.origin().ascii_serialization())
                .map_err(|_| "the public URL has no origin")?;
            if !origin.trim().eq_ignore_ascii_case(&ours) {
                return Err("a foreign Origin");
            }
        }
        if let Some(site) = sec_fetch_site {
            let site = site.trim();
            if !site.eq_ignore_ascii_case("same-origin") && !site.eq_ignore_ascii_case("none") {
                return Err("a Sec-Fetch-Site other than same-origin");
            }
        }
        if !well_formed(token) {
            return Err("a malformed link");
        }
        let Some(submitted) = submitted else {
            return Err("no form token");
        };
        let name = form_cookie_name(token, self.links_secure());
        let mut cookies = cookies.iter().filter(|(n, _)| *n == name).peekable();
        if cookies.peek().is_none() {
            return Err("no form cookie");
        }
        let holds = cookies.any(|(_, v)| {
            use subtle::ConstantTimeEq;
            bool::from(form_token(token, v).as_bytes().ct_eq(submitted.as_bytes()))
        });
        if holds {
            Ok(())
        } else {
            Err("a form token that does not match its cookie")
        }
    }

    /// `POST /connect/{link}`: spends the link once and answers where to go. The caller
    /// has checked [`Services::connect_link_form_holds`] first.
    pub async fn spend_connect_link(
        &self,
        token: &str,
        ctx: &RequestContext,
    ) -> ServiceResult<Result<SpentLink, Option<LinkGone>>> {
        if !well_formed(token) {
            return Ok(Err(None));
        }
        let Some(view) = self.connect_store().connect_link(&link_hash(token)).await? else {
            return Ok(Err(None));
        };
        let session = &view.session;
        let Some(link) = &session.link else {
            return Ok(Err(None));
        };
        let now = self.clock.now();
        if let Some(why) = gone(session, link, now) {
            return Ok(Err(Some(why)));
        }
        let location = sealed_url(token, session, link)?;
        let cookie = random_token();
        let state_expires_at = now + Duration::minutes(SESSION_LIFETIME_MINUTES);
        let audit = record(
            ctx,
            now,
            Some(&session.vault_id),
            Actor::Anonymous,
            "connect_link.open",
            Some(session.id.to_string()),
            "success",
        );
        if !self
            .store
            .spend_connect_link(
                &session.id,
                &binding_hash(cookie.expose_secret()),
                now,
                state_expires_at,
                audit,
            )
            .await?
        {
            // Someone pressed it a moment earlier.
            return Ok(Err(Some(LinkGone::Used)));
        }
        info!(vault.id = %session.vault_id, session.id = %session.id, "connect link spent");
        let secure = self.links_secure();
        Ok(Ok(SpentLink {
            location,
            cookie_name: binding_cookie_name(&session.id, secure),
            cookie_value: cookie,
            cookie_max_age_secs: SESSION_LIFETIME_MINUTES * 60,
            secure,
        }))
    }

    /// The origin the link's button sends the browser to, from the session's own
    /// authorization URL (with a templated provider's parameters filled in, e.g.
    /// `https://{shop}.myshopify.com`): the page's CSP `form-action` must allow it.
    fn link_target_origin(
        &self,
        token: &str,
        session: &ConnectSessionRecord,
        link: &ConnectLinkRecord,
    ) -> ServiceResult<String> {
        let url = url::Url::parse(&sealed_url(token, session, link)?).map_err(|_| {
            ServiceError::internal(std::io::Error::other("a connect link's URL is not a URL"))
        })?;
        Ok(url.origin().ascii_serialization())
    }

    /// A link's expiry for a session created now.
    pub(crate) fn link_expiry(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + Duration::seconds(i64::try_from(self.config.connect_link_ttl_secs).unwrap_or(1800))
    }
}
