//! Small server-rendered HTML pages (the OAuth callback's answers), with headers that
//! keep them from being framed, cached or leaking their URL (which holds the code).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

pub(crate) fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// The policy of every non-HTML answer (JSON, redirects, proxied provider answers): a
/// document that loads nothing, runs nothing and cannot be framed.
pub(crate) const API_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; sandbox";

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// A page with a title and an already-escaped HTML message.
pub(crate) fn page(status: StatusCode, title: &str, message_html: &str) -> Response {
    page_with_csp(
        status,
        title,
        &format!("<p>{message_html}</p>"),
        HeaderValue::from_static(CSP),
    )
}

/// A page whose form may lead to `form_origin` as well as here: browsers apply
/// `form-action` to the redirect a form's answer makes, and the connect link's button
/// answers with a redirect to the provider.
pub(crate) fn form_page(
    status: StatusCode,
    title: &str,
    body_html: &str,
    form_origin: &str,
) -> Response {
    let csp = HeaderValue::from_str(&format!(
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self' {form_origin}"
    ))
    .unwrap_or(HeaderValue::from_static(CSP));
    page_with_csp(status, title, body_html, csp)
}

fn page_with_csp(status: StatusCode, title: &str, body_html: &str, csp: HeaderValue) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} · tokenwarden</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}}\
         h1{{font-size:1.4rem}}code{{background:#f3f3f3;padding:.1rem .3rem;border-radius:3px}}</style></head>\
         <body><h1>{t}</h1>{body_html}</body></html>",
        t = escape(title)
    );
    let mut response = (status, Html(body)).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, csp);
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
