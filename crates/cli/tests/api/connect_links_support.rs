//! What the connect-link tests share: link sessions, opening a link and reading its
//! page's form, pressing its button as a browser does, the binding cookie and the
//! vault's audit actions.

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Answer, Auth, fetch};
use crate::oauth_support::{OAuthEnv, send};

pub async fn new_link_session(env: &OAuthEnv, connection_id: &str) -> Value {
    env.start_session(&json!({"app": "fake", "connection_id": connection_id}))
        .await
        .expect_json(StatusCode::CREATED)
}

pub fn link_of(session: &Value) -> String {
    session["connect_link"].as_str().unwrap().to_owned()
}

pub async fn open(env: &OAuthEnv, method: Method, url: &str, cookie: Option<&str>) -> Answer {
    let mut request = env.app.client.request(method, url);
    if let Some(c) = cookie {
        request = request.header("cookie", c);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    Answer {
        status,
        headers,
        text,
    }
}

/// What a link page hands its browser: the form cookie (`name=value`) and the hidden
/// `form_token` of its button's form.
pub struct PageForm {
    pub cookie: String,
    pub form_token: String,
}

/// Reads the form cookie and the hidden `form_token` off an open link's page.
pub fn page_form(page: &Answer) -> PageForm {
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let cookie = page
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.contains("tw_form_"))
        .unwrap_or_else(|| panic!("a form cookie in {:?}", page.headers))
        .split(';')
        .next()
        .unwrap()
        .trim()
        .to_owned();
    let marker = "name=\"form_token\" value=\"";
    let start = page.text.find(marker).expect("a form_token field") + marker.len();
    let end = start + page.text[start..].find('"').unwrap();
    PageForm {
        cookie,
        form_token: page.text[start..end].to_owned(),
    }
}

/// The origin of the public URL a link lives under.
pub fn origin_of(link: &str) -> String {
    url::Url::parse(link)
        .unwrap()
        .origin()
        .ascii_serialization()
}

/// Presses a link's button with these headers, cookie and form (`None`: no body).
pub async fn post_link(
    client: &Client,
    link: &str,
    headers: &[(&str, &str)],
    cookie: Option<&str>,
    form_token: Option<&str>,
) -> Answer {
    let mut request = client.post(link);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(c) = cookie {
        request = request.header("cookie", c);
    }
    if let Some(t) = form_token {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("form_token", t)
            .finish();
        request = request
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
    }
    let response = request.send().await.unwrap();
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        text: response.text().await.unwrap(),
    }
}

/// Spends a link as a browser does: opens its page, then presses its button, sending
/// the page's form cookie and form token with a same-origin `Origin`.
pub async fn press(client: &Client, link: &str) -> Answer {
    let page = fetch(client, Method::GET, link, Auth::None, None).await;
    if page.status != StatusCode::OK {
        // A used, expired or unknown link: the press answers as the page did.
        return post_link(client, link, &[], None, None).await;
    }
    let form = page_form(&page);
    post_link(
        client,
        link,
        &[
            ("origin", &origin_of(link)),
            ("sec-fetch-site", "same-origin"),
        ],
        Some(&form.cookie),
        Some(&form.form_token),
    )
    .await
}

/// Audit actions of the vault, oldest first.
pub async fn audit_actions(env: &OAuthEnv) -> Vec<String> {
    let page = send(
        &env.app,
        Method::GET,
        "/v1/audit?limit=1000",
        Auth::Bearer(&env.vault.admin_key),
        None,
    )
    .await
    .expect_json(StatusCode::OK);
    let mut actions: Vec<String> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_owned())
        .collect();
    actions.reverse();
    actions
}

/// `name=value` of the binding cookie a spend answer sets, and the whole header.
pub fn binding_cookie(answer: &Answer) -> (String, String) {
    let header = answer
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.contains("tw_connect_"))
        .expect("a binding cookie")
        .to_owned();
    let pair = header.split(';').next().unwrap().trim().to_owned();
    (pair, header)
}
