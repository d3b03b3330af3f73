//! Connect links: a page that spends nothing, a button that spends the link once and
//! binds the flow to the browser, 410 afterwards or after expiry.

use reqwest::{Method, StatusCode};

use crate::connect_links_support::{
    audit_actions, binding_cookie, link_of, new_link_session, open, press,
};
use crate::helpers::{Auth, fetch};
use crate::oauth_support::{follow_authorization, oauth_env};

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
