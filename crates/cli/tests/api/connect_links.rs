//! Connect links: a page that spends nothing, a button that spends the link once and
//! binds the flow to the browser, 410 afterwards or after expiry.

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Answer, Auth, fetch};
use crate::oauth_support::{OAuthEnv, follow_authorization, oauth_env, send};

async fn new_link_session(env: &OAuthEnv, connection_id: &str) -> Value {
    env.start_session(&json!({"app": "fake", "connection_id": connection_id}))
        .await
        .expect_json(StatusCode::CREATED)
}

fn link_of(session: &Value) -> String {
    session["connect_link"].as_str().unwrap().to_owned()
}

async fn open(env: &OAuthEnv, method: Method, url: &str, cookie: Option<&str>) -> Answer {
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
async fn audit_actions(env: &OAuthEnv) -> Vec<String> {
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
fn binding_cookie(answer: &Answer) -> (String, String) {
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

#[tokio::test]
async fn opening_a_link_spends_nothing_and_its_button_works_once() {
    let env = oauth_env().await;
    let session = new_link_session(&env, "c1").await;
    let link = link_of(&session);
    assert!(
        link.starts_with(&format!("{}/connect/", env.app.base_url)),
        "{link}"
    );
    assert_ne!(link, session["authorization_url"].as_str().unwrap());
    let audit_before = audit_actions(&env).await;
    let provider_requests = env.provider.requests().len();

    let head = open(&env, Method::HEAD, &link, None).await;
    assert_eq!(head.status, StatusCode::OK);
    for _ in 0..3 {
        let page = open(&env, Method::GET, &link, None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        assert!(page.text.contains("<code>fake</code>"), "{}", page.text);
        assert!(page.text.contains("<code>profile</code>"), "{}", page.text);
        assert!(
            page.text.contains(
                "<form method=\"post\"><input type=\"hidden\" name=\"form_token\" value=\""
            ),
            "{}",
            page.text
        );
        assert_eq!(page.header("x-frame-options"), Some("DENY"));
        assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(page.header("cache-control"), Some("no-store"));
        let csp = page.header("content-security-policy").unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(
            csp.contains(&format!("form-action 'self' {}", env.provider.base_url())),
            "{csp}"
        );
        // Each view sets a fresh form cookie, strict and short-lived, and no other.
        let set_cookie = page.header("set-cookie").unwrap();
        assert_eq!(page.headers.get_all("set-cookie").iter().count(), 1);
        assert!(set_cookie.starts_with("tw_form_"), "{set_cookie}");
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(
                set_cookie.contains(attribute),
                "{attribute} in {set_cookie}"
            );
        }
        assert!(!set_cookie.contains("Secure"), "{set_cookie}");
        // About the link's remaining life (its thirty minutes).
        let max_age: i64 = set_cookie
            .split("Max-Age=")
            .nth(1)
            .and_then(|v| v.split(';').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!((1790..=1800).contains(&max_age), "{set_cookie}");
    }
    assert!(
        head.header("set-cookie").is_none(),
        "HEAD sets no cookie: {:?}",
        head.headers
    );
    let status = env.session_status(session["id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "pending");
    assert_eq!(
        audit_actions(&env).await,
        audit_before,
        "GET and HEAD wrote nothing"
    );
    assert_eq!(env.provider.requests().len(), provider_requests);

    let spent = press(&env.app.client, &link).await;
    assert_eq!(spent.status, StatusCode::SEE_OTHER, "{}", spent.text);
    assert_eq!(
        spent.header("location"),
        session["authorization_url"].as_str()
    );
    let (_, set_cookie) = binding_cookie(&spent);
    let session_id = session["id"].as_str().unwrap();
    assert!(
        set_cookie.starts_with(&format!("tw_connect_{session_id}=")),
        "{set_cookie}"
    );
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=600"] {
        assert!(
            set_cookie.contains(attribute),
            "{attribute} in {set_cookie}"
        );
    }
    // Plain-HTTP loopback development: no Secure flag (the browser would drop it).
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    let mut after = audit_before.clone();
    after.push("connect_link.open".to_owned());
    assert_eq!(
        audit_actions(&env).await,
        after,
        "the spend wrote one record"
    );

    let again = open(&env, Method::POST, &link, None).await;
    assert_eq!(again.status, StatusCode::GONE, "{}", again.text);
    assert!(again.text.contains("already used"), "{}", again.text);
    assert!(again.header("location").is_none());
    let page = open(&env, Method::GET, &link, None).await;
    assert_eq!(page.status, StatusCode::GONE);
    assert!(page.text.contains("already used"), "{}", page.text);
    assert_eq!(
        audit_actions(&env).await,
        after,
        "a refused spend writes nothing"
    );
}

#[tokio::test]
async fn the_callback_of_a_link_started_flow_needs_the_browsers_binding_cookie() {
    let env = oauth_env().await;
    let session = new_link_session(&env, "c1").await;
    let spent = press(&env.app.client, &link_of(&session)).await;
    assert_eq!(spent.status, StatusCode::SEE_OTHER);
    let (cookie, _) = binding_cookie(&spent);
    let callback = follow_authorization(&env.app.client, spent.header("location").unwrap()).await;

    // Another browser (the link was forwarded): no cookie, or someone else's.
    for other in [
        None,
        Some(format!("{}x", cookie)),
        Some("tw_connect_cs_x=abc".to_owned()),
    ] {
        let page = open(&env, Method::GET, &callback, other.as_deref()).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.text);
        assert!(page.text.contains("another browser"), "{}", page.text);
    }
    assert_eq!(env.provider.code_exchanges(), 0);
    let missing = env.connection("c1").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let status = env.session_status(session["id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "pending");

    // The browser that pressed the button finishes it.
    let page = open(&env, Method::GET, &callback, Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(env.provider.code_exchanges(), 1);
    assert_eq!(env.connection("c1").await.status, StatusCode::OK);
    let status = env.session_status(session["id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "completed");
}

#[tokio::test]
async fn an_expired_link_answers_410_and_spends_nothing() {
    let env = oauth_env().await;
    let session = new_link_session(&env, "c1").await;
    let link = link_of(&session);
    env.app.clock.advance_secs(1801);
    let audit_before = audit_actions(&env).await;

    let page = open(&env, Method::GET, &link, None).await;
    assert_eq!(page.status, StatusCode::GONE, "{}", page.text);
    assert!(page.text.contains("expired"), "{}", page.text);
    let post = open(&env, Method::POST, &link, None).await;
    assert_eq!(post.status, StatusCode::GONE, "{}", post.text);
    assert!(post.text.contains("expired"), "{}", post.text);
    assert!(post.header("set-cookie").is_none());
    assert_eq!(audit_actions(&env).await, audit_before);
    let status = env.session_status(session["id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "expired");
}

#[tokio::test]
async fn a_link_opened_after_the_states_ten_minutes_still_works() {
    let env = oauth_env().await;
    let session = new_link_session(&env, "c1").await;
    env.app.clock.advance_secs(20 * 60);

    let spent = press(&env.app.client, &link_of(&session)).await;
    assert_eq!(spent.status, StatusCode::SEE_OTHER, "{}", spent.text);
    let (cookie, _) = binding_cookie(&spent);
    let callback = follow_authorization(&env.app.client, spent.header("location").unwrap()).await;
    let page = open(&env, Method::GET, &callback, Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
}

#[tokio::test]
async fn unknown_and_malformed_links_answer_404() {
    let env = oauth_env().await;
    let session = new_link_session(&env, "c1").await;
    let link = link_of(&session);
    let mut other = link.clone();
    let last = other.pop().unwrap();
    other.push(if last == 'A' { 'B' } else { 'A' });
    for url in [
        other,
        format!("{}/connect/short", env.app.base_url),
        format!("{}/connect/{}", env.app.base_url, "%00".repeat(20)),
    ] {
        for method in [Method::GET, Method::POST] {
            let page = fetch(&env.app.client, method.clone(), &url, Auth::None, None).await;
            assert_eq!(
                page.status,
                StatusCode::NOT_FOUND,
                "{method} {url}: {}",
                page.text
            );
        }
    }
    // The real link is untouched by the guesses.
    assert_eq!(
        open(&env, Method::GET, &link, None).await.status,
        StatusCode::OK
    );
}

/// Asserts a press was refused as not from the link's page: 403, an HTML page that
/// says to open the link again, no cookie and no redirect.
fn assert_refused(what: &str, answer: &Answer) {
    assert_eq!(
        answer.status,
        StatusCode::FORBIDDEN,
        "{what}: {}",
        answer.text
    );
    assert_eq!(
        answer.header("content-type"),
        Some("text/html; charset=utf-8"),
        "{what}"
    );
    assert!(
        answer.text.contains("Open the link again"),
        "{what}: {}",
        answer.text
    );
    assert!(
        answer.header("set-cookie").is_none(),
        "{what}: {:?}",
        answer.headers
    );
    assert!(answer.header("location").is_none(), "{what}");
    assert_eq!(answer.header("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(answer.header("cache-control"), Some("no-store"), "{what}");
}

#[tokio::test]
async fn a_cross_site_press_is_refused_and_the_link_still_works_from_its_page() {
    let env = oauth_env().await;
    let session = new_link_session(&env, "c1").await;
    let link = link_of(&session);
    let client = &env.app.client;
    let audit_before = audit_actions(&env).await;
    let form = page_form(&open(&env, Method::GET, &link, None).await);
    let ours = origin_of(&link);

    // An attacker's page auto-submitting a form, with or without what the page set.
    for (what, headers, cookie, token) in [
        (
            "a foreign Origin",
            vec![("origin", "https://evil.example")],
            Some(form.cookie.as_str()),
            Some(form.form_token.as_str()),
        ),
        (
            "an opaque Origin",
            vec![("origin", "null")],
            Some(form.cookie.as_str()),
            Some(form.form_token.as_str()),
        ),
        (
            "Sec-Fetch-Site: cross-site",
            vec![("sec-fetch-site", "cross-site")],
            Some(form.cookie.as_str()),
            Some(form.form_token.as_str()),
        ),
        (
            "Sec-Fetch-Site: same-site",
            vec![("origin", ours.as_str()), ("sec-fetch-site", "same-site")],
            Some(form.cookie.as_str()),
            Some(form.form_token.as_str()),
        ),
        (
            "a foreign Origin without the page's form",
            vec![
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "cross-site"),
            ],
            None,
            None,
        ),
    ] {
        let answer = post_link(client, &link, &headers, cookie, token).await;
        assert_refused(what, &answer);
    }
    assert_eq!(audit_actions(&env).await, audit_before, "nothing was spent");
    let status = env.session_status(session["id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "pending");

    // The link's own page still works, with the cookie and token it set.
    let page = open(&env, Method::GET, &link, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let spent = press(client, &link).await;
    assert_eq!(spent.status, StatusCode::SEE_OTHER, "{}", spent.text);
    assert!(binding_cookie(&spent).1.starts_with("tw_connect_"));
}

#[tokio::test]
async fn a_press_without_its_pages_form_token_and_cookie_is_refused_and_spends_nothing() {
    let env = oauth_env().await;
    let session = new_link_session(&env, "c1").await;
    let link = link_of(&session);
    let other_link = link_of(&new_link_session(&env, "c2").await);
    let client = &env.app.client;
    let ours = origin_of(&link);
    let same_origin = [("origin", ours.as_str()), ("sec-fetch-site", "same-origin")];
    let form = page_form(&open(&env, Method::GET, &link, None).await);
    let other = page_form(&open(&env, Method::GET, &other_link, None).await);
    // A second view of the same page: a fresh cookie and token.
    let second = page_form(&open(&env, Method::GET, &link, None).await);
    assert_ne!(form.cookie, second.cookie);
    assert_ne!(form.form_token, second.form_token);
    let audit_before = audit_actions(&env).await;

    let wrong_token = format!("{}x", form.form_token);
    let other_cookie_with_ours = format!(
        "{}={}",
        form.cookie.split_once('=').unwrap().0,
        other.cookie.split_once('=').unwrap().1
    );
    let both = format!("{}; {}", other.cookie, form.cookie);
    for (what, cookie, token) in [
        ("no form token and no cookie", None, None),
        ("no form token", Some(form.cookie.as_str()), None),
        ("an empty form token", Some(form.cookie.as_str()), Some("")),
        (
            "a wrong form token",
            Some(form.cookie.as_str()),
            Some(wrong_token.as_str()),
        ),
        ("no cookie", None, Some(form.form_token.as_str())),
        (
            "another link's token and cookie",
            Some(other.cookie.as_str()),
            Some(other.form_token.as_str()),
        ),
        (
            "another link's token with this link's cookie",
            Some(form.cookie.as_str()),
            Some(other.form_token.as_str()),
        ),
        (
            "another link's cookie value under this link's name",
            Some(other_cookie_with_ours.as_str()),
            Some(other.form_token.as_str()),
        ),
        (
            "another link's token with both cookies",
            Some(both.as_str()),
            Some(other.form_token.as_str()),
        ),
        (
            "the first view's token with the second view's cookie",
            Some(second.cookie.as_str()),
            Some(form.form_token.as_str()),
        ),
    ] {
        let answer = post_link(client, &link, &same_origin, cookie, token).await;
        assert_refused(what, &answer);
    }
    // Nor with no Origin and Sec-Fetch-Site at all (an older browser or a script).
    assert_refused(
        "no headers, no form",
        &post_link(client, &link, &[], None, None).await,
    );
    assert_eq!(audit_actions(&env).await, audit_before, "nothing was spent");
    let status = env.session_status(session["id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "pending");

    // Each view's own pair works (the second view's here), with no Origin sent.
    let spent = post_link(
        client,
        &link,
        &[],
        Some(&second.cookie),
        Some(&second.form_token),
    )
    .await;
    assert_eq!(spent.status, StatusCode::SEE_OTHER, "{}", spent.text);
    assert_eq!(
        spent.header("location"),
        session["authorization_url"].as_str()
    );
    // Then the link is used, whatever comes with the press.
    let again = post_link(
        client,
        &link,
        &same_origin,
        Some(&form.cookie),
        Some(&form.form_token),
    )
    .await;
    assert_eq!(again.status, StatusCode::GONE, "{}", again.text);
    // And the other link was untouched by its token's use here.
    let spent = post_link(
        client,
        &other_link,
        &same_origin,
        Some(&other.cookie),
        Some(&other.form_token),
    )
    .await;
    assert_eq!(spent.status, StatusCode::SEE_OTHER, "{}", spent.text);
}

#[tokio::test]
async fn the_normal_browser_flow_spends_with_the_pages_form_and_finishes() {
    let env = oauth_env().await;
    let session = new_link_session(&env, "c1").await;
    let spent = press(&env.app.client, &link_of(&session)).await;
    assert_eq!(spent.status, StatusCode::SEE_OTHER, "{}", spent.text);
    assert_eq!(spent.headers.get_all("set-cookie").iter().count(), 1);
    let (cookie, _) = binding_cookie(&spent);
    let callback = follow_authorization(&env.app.client, spent.header("location").unwrap()).await;
    let page = open(&env, Method::GET, &callback, Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(env.connection("c1").await.status, StatusCode::OK);
}
