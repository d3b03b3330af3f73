//! What the API proxy forwards: requests reach the fake provider's API with the
//! connection's token and without the caller's credentials, every method with its body
//! and query; caching is turned off, redirects are handed back unfollowed, and the
//! base-URL header must name a listed base.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::assert_problem;
use crate::proxy_support::{proxy_env, read};

#[tokio::test]
async fn proxied_requests_carry_the_connection_token_and_not_the_callers_credentials() {
    let env = proxy_env().await;
    let answer = read(
        env.app
            .client
            .get(env.proxy_url("alice/user/repos?per_page=5&q=a+b&access_token=x"))
            .bearer_auth(&env.proxy_key)
            .header("cookie", "tw_session=caller-cookie")
            .header("x-forwarded-for", "10.1.2.3")
            .header("forwarded", "for=10.1.2.3")
            .header("proxy-authorization", "Basic Y2FsbGVy")
            .header("x-custom", "kept")
            .header("accept", "application/json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let echo = answer.expect_json(StatusCode::OK);
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["path"], "/api/user/repos");
    assert_eq!(echo["query"], "per_page=5&q=a+b&access_token=x");
    let headers = &echo["headers"];
    assert_eq!(
        headers["authorization"],
        format!("Bearer {}", env.current_token())
    );
    assert!(!headers["authorization"].as_str().unwrap().contains("twk_"));
    for dropped in [
        "cookie",
        "x-forwarded-for",
        "forwarded",
        "proxy-authorization",
    ] {
        assert_eq!(headers[dropped], Value::Null, "{dropped} was forwarded");
    }
    assert_eq!(headers["x-custom"], "kept");
    assert_eq!(headers["accept"], "application/json");
    assert_eq!(
        headers["host"],
        env.provider.local_addr().unwrap().to_string()
    );
    // The provider's cookie stays with the provider; its caching rule (here
    // `private, max-age=5`) gives way to no-store: no cache keeps what a token fetched.
    assert_eq!(answer.header("set-cookie"), None);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(env.provider.api_calls(), 1);
    assert_eq!(env.provider.refresh_calls(), 0);
}

#[tokio::test]
async fn responses_without_their_own_cache_control_get_no_store() {
    let env = proxy_env().await;
    let answer = env.get("alice/no-cache-header").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn every_method_is_forwarded_with_its_body_and_query() {
    let env = proxy_env().await;
    for method in [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ] {
        let body = (method != Method::GET).then(|| format!("{{\"via\":\"{method}\"}}"));
        let answer = env
            .call(
                method.clone(),
                "alice/items/7?fields=a,b",
                &env.proxy_key,
                body.clone().map(String::into_bytes),
            )
            .await;
        let echo = answer.expect_json(StatusCode::OK);
        assert_eq!(echo["method"], method.as_str());
        assert_eq!(echo["path"], "/api/items/7");
        assert_eq!(echo["query"], "fields=a,b");
        assert_eq!(echo["body"], body.unwrap_or_default());
    }
    assert_eq!(env.provider.api_calls(), 5);
}

#[tokio::test]
async fn an_upstream_redirect_to_another_host_is_returned_and_not_followed() {
    let env = proxy_env().await;
    let port = env.provider.local_addr().unwrap().port();
    let elsewhere = format!("http://localhost:{port}/api/landing");
    let answer = env
        .get(&format!("alice/redirect?to={}", urlencode(&elsewhere)))
        .await;
    assert_eq!(answer.status, StatusCode::FOUND);
    assert_eq!(answer.header("location"), Some(elsewhere.as_str()));
    assert_eq!(env.provider.requests_to("/api/redirect").len(), 1);
    assert!(env.provider.requests_to("/api/landing").is_empty());
    assert_eq!(env.provider.api_calls(), 1);
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn the_base_url_header_must_name_a_listed_base() {
    let env = proxy_env().await;
    let base = format!("{}", url::Url::parse(&env.provider.api_base_url()).unwrap());
    for named in [base.as_str(), env.provider.api_base_url().as_str()] {
        let answer = read(
            env.app
                .client
                .get(env.proxy_url("alice/user"))
                .bearer_auth(&env.proxy_key)
                .header("x-tokenwarden-base-url", named)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let echo = answer.expect_json(StatusCode::OK);
        assert_eq!(echo["headers"]["x-tokenwarden-base-url"], Value::Null);
    }
    let refused = read(
        env.app
            .client
            .get(env.proxy_url("alice/user"))
            .bearer_auth(&env.proxy_key)
            .header("x-tokenwarden-base-url", "http://127.0.0.1:1/api")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_problem(
        &refused,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "x-tokenwarden-base-url must be exactly one of the provider's api_base_urls",
    );
    assert_eq!(env.provider.api_calls(), 2);
}
