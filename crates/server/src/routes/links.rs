//! `GET|HEAD|POST /connect/{link}`: the connect link pages (docs/api.md, "Connect"; the design in docs/design.md, "Connect").

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cookie::{Cookie, SameSite};
use secrecy::ExposeSecret;
use tokenwarden_service::{LinkGone, LinkView};
use tracing::warn;

use crate::error::ApiError;
use crate::extract::Ctx;
use crate::pages::{self, escape};
use crate::state::AppState;

fn gone_page(why: LinkGone) -> Response {
    let message = match why {
        LinkGone::Used => {
            "This link was already used. Each connect link works once; ask for a new one."
        }
        LinkGone::Expired => "This link has expired. Ask for a new one.",
        LinkGone::Finished => {
            "The connection this link was for has already been completed or has failed. Ask for a new link if you still need one."
        }
    };
    pages::page(StatusCode::GONE, "Link no longer valid", message)
}

fn unknown_page() -> Response {
    pages::page(
        StatusCode::NOT_FOUND,
        "Unknown link",
        "This connect link is not known. Check that it was copied whole.",
    )
}

fn cannot_open_page() -> Response {
    pages::page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The server could not open this link.",
    )
}

/// A `Set-Cookie` value for one of the link pages' cookies: HttpOnly, Path=/, Secure
/// under an https public URL.
fn set_cookie(
    name: &str,
    value: &str,
    same_site: SameSite,
    max_age_secs: i64,
    secure: bool,
) -> Option<HeaderValue> {
    let cookie = Cookie::build((name.to_owned(), value.to_owned()))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(same_site)
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build();
    HeaderValue::from_str(&cookie.to_string()).ok()
}

/// A press that did not come from the link's own page (a cross-site form, or a page
/// whose form cookie is gone): nothing was spent.
fn refused_page() -> Response {
    pages::page(
        StatusCode::FORBIDDEN,
        "Open the link again",
        "This request did not come from the link's own page, so nothing was done and the \
         link still works. Open the link again and press the button on its page.",
    )
}

fn error_page(e: tokenwarden_service::ServiceError) -> Response {
    // Logs through the API error's conversion; the page says nothing more.
    let _ = ApiError::from(e);
    pages::page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The server could not open this link; it has been logged.",
    )
}

/// The link's page: what will be connected, and a button. Spends nothing, so
/// link-preview bots and mail scanners cannot use the link up. An open link's page sets
/// its form cookie (HttpOnly, SameSite=Strict; not on HEAD), which the button's form
/// must send back with the page's hidden `form_token`.
#[utoipa::path(
    get,
    path = "/connect/{link}",
    tag = "connect",
    params(("link" = String, Path, description = "The link token from `connect_link`")),
    responses(
        (status = 200, description = "The page with its button; sets the page's form cookie", content_type = "text/html", body = String),
        (status = 404, description = "Unknown link", content_type = "text/html", body = String),
        (status = 410, description = "Used or expired link", content_type = "text/html", body = String),
    )
)]
pub async fn connect_link_page(
    State(state): State<AppState>,
    method: Method,
    Path(link): Path<String>,
) -> Response {
    match state.services.connect_link_page(&link).await {
        Ok(LinkView::Open(p)) => {
            let scopes = if p.scopes.is_empty() {
                "<li>(the provider's default access)</li>".to_owned()
            } else {
                p.scopes
                    .iter()
                    .map(|s| format!("<li><code>{}</code></li>", escape(s)))
                    .collect()
            };
            let body = format!(
                "<p><strong>{vault}</strong> asks to connect your <strong>{provider}</strong> account \
                 to its app <code>{app}</code>, with this access:</p><ul>{scopes}</ul>\
                 <p>You will sign in at {provider}, not here. This link works once and until {expires} UTC.</p>\
                 <form method=\"post\"><input type=\"hidden\" name=\"form_token\" value=\"{form_token}\">\
                 <button type=\"submit\">Continue to {provider}</button></form>",
                vault = escape(&p.vault_name),
                provider = escape(&p.provider),
                app = escape(&p.app),
                expires = p.expires_at.format("%Y-%m-%d %H:%M"),
                form_token = escape(p.form_token.expose_secret()),
            );
            let mut page = pages::form_page(
                StatusCode::OK,
                &format!("Connect {}", p.provider),
                &body,
                &p.provider_origin,
            );
            if method != Method::HEAD {
                match set_cookie(
                    &p.form_cookie_name,
                    p.form_cookie_value.expose_secret(),
                    SameSite::Strict,
                    p.form_max_age_secs,
                    p.secure,
                ) {
                    Some(v) => {
                        page.headers_mut().insert(header::SET_COOKIE, v);
                    }
                    None => return cannot_open_page(),
                }
            }
            page
        }
        Ok(LinkView::Gone(why)) => gone_page(why),
        Ok(LinkView::Unknown) => unknown_page(),
        Err(e) => error_page(e),
    }
}

/// The link page's form, as its button sends it.
#[derive(utoipa::ToSchema)]
pub struct SpendLinkForm {
    /// The page's hidden `form_token`, which must match the form cookie the page set.
    form_token: Option<String>,
}

/// The value of a header, if it is sent once and readable.
fn single_header(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => None,
        // Two values, or one that is not text, are refused as a foreign one.
        (Some(v), None) => Some(v.to_str().unwrap_or("\u{0}")),
        (Some(_), Some(_)) => Some("\u{0}"),
    }
}

/// Spends the link once: binds the flow to this browser with a cookie and sends it to
/// the provider. Only a press on the link's own page counts: the form must carry the
/// page's `form_token` and the browser its form cookie, and an `Origin` or
/// `Sec-Fetch-Site` header, when sent, must say the request is same-origin; otherwise
/// 403 and nothing is spent. A used or expired link gets 410.
#[utoipa::path(
    post,
    path = "/connect/{link}",
    tag = "connect",
    params(("link" = String, Path, description = "The link token from `connect_link`")),
    request_body(content = SpendLinkForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "To the provider's authorization page"),
        (status = 403, description = "Not pressed on the link's own page (cross-site, or without its form token and cookie); nothing was spent", content_type = "text/html", body = String),
        (status = 404, description = "Unknown link", content_type = "text/html", body = String),
        (status = 410, description = "Used or expired link", content_type = "text/html", body = String),
    )
)]
pub async fn spend_connect_link(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(link): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = SpendLinkForm {
        form_token: url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == "form_token")
            .map(|(_, v)| v.into_owned()),
    };
    let cookies = cookies_named(&headers, "tw_form_");
    if let Err(why) = state.services.connect_link_form_holds(
        &link,
        single_header(&headers, header::ORIGIN),
        single_header(&headers, header::HeaderName::from_static("sec-fetch-site")),
        form.form_token.as_deref(),
        &cookies,
    ) {
        // An unknown or used link still says so; an open one is refused untouched.
        return match state.services.connect_link_page(&link).await {
            Ok(LinkView::Open(_)) => {
                warn!(
                    reason = why,
                    "a connect link press was refused as not from its page"
                );
                refused_page()
            }
            Ok(LinkView::Gone(gone)) => gone_page(gone),
            Ok(LinkView::Unknown) => unknown_page(),
            Err(e) => error_page(e),
        };
    }
    match state.services.spend_connect_link(&link, &ctx).await {
        Ok(Ok(spent)) => {
            let cookie = set_cookie(
                &spent.cookie_name,
                spent.cookie_value.expose_secret(),
                SameSite::Lax,
                spent.cookie_max_age_secs,
                spent.secure,
            );
            let mut headers = HeaderMap::new();
            match (cookie, HeaderValue::from_str(&spent.location).ok()) {
                (Some(set_cookie), Some(location)) => {
                    headers.insert(header::SET_COOKIE, set_cookie);
                    headers.insert(header::LOCATION, location);
                }
                _ => return cannot_open_page(),
            }
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            (StatusCode::SEE_OTHER, headers).into_response()
        }
        Ok(Err(Some(why))) => gone_page(why),
        Ok(Err(None)) => unknown_page(),
        Err(e) => error_page(e),
    }
}

/// The request's cookies, for the callback's browser-binding check.
pub(crate) fn request_cookies(headers: &HeaderMap) -> Vec<(String, String)> {
    cookies_named(headers, "tw_connect_")
}

/// The request's cookies whose name contains `part`.
fn cookies_named(headers: &HeaderMap, part: &str) -> Vec<(String, String)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse(v.to_owned()).filter_map(Result::ok))
        .filter(|c| c.name().contains(part))
        .map(|c| (c.name().to_owned(), c.value().to_owned()))
        .collect()
}
