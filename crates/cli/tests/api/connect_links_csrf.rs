//! Connect-link presses that do not come from the link's own page (cross-site, or
//! without the page's form token and cookie) are refused and spend nothing.

use reqwest::{Method, StatusCode};

use crate::connect_links_support::{
    audit_actions, binding_cookie, link_of, new_link_session, open, origin_of, page_form,
    post_link, press,
};
use crate::helpers::Answer;
use crate::oauth_support::oauth_env;

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
