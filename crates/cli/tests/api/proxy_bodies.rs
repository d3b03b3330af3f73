//! Bodies through the API proxy: they stream both ways within their 10 MiB limit, are
//! refused or cut off beyond it, and a streamed body too long to replay is not retried
//! after an upstream 401.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::Auth;
use crate::oauth_support::send;
use crate::proxy_support::{problem_code, proxy_env, read};

const MIB: usize = 1024 * 1024;

/// A body sent in 64 KiB chunks without a Content-Length.
fn chunked(len: usize) -> reqwest::Body {
    let chunks = (0..len.div_ceil(64 * 1024)).map(move |i| {
        let n = (len - i * 64 * 1024).min(64 * 1024);
        Ok::<_, std::io::Error>(vec![(i % 251) as u8; n])
    });
    reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
}

fn chunked_bytes(len: usize) -> Vec<u8> {
    (0..len.div_ceil(64 * 1024))
        .flat_map(|i| {
            let n = (len - i * 64 * 1024).min(64 * 1024);
            std::iter::repeat_n((i % 251) as u8, n)
        })
        .collect()
}

#[tokio::test]
async fn a_streamed_five_mib_body_round_trips() {
    let env = proxy_env().await;
    let response = env
        .app
        .client
        .post(env.proxy_url("alice/echo-body/upload"))
        .bearer_auth(&env.proxy_key)
        .header("content-type", "application/octet-stream")
        .body(chunked(5 * MIB))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    let bytes = response.bytes().await.unwrap();
    assert_eq!(bytes.len(), 5 * MIB);
    assert!(bytes.as_ref() == chunked_bytes(5 * MIB).as_slice());
    let recorded = env.provider.requests_to("/api/echo-body/upload");
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].body_len, 5 * MIB);
}

#[tokio::test]
async fn a_body_over_ten_mib_gets_413_and_never_reaches_the_api() {
    let env = proxy_env().await;
    let declared = env
        .call(
            Method::POST,
            "alice/echo-body",
            &env.proxy_key,
            Some(vec![b'a'; 11 * MIB]),
        )
        .await;
    assert_eq!(declared.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(problem_code(&declared), "payload_too_large");

    let streamed = read(
        env.app
            .client
            .put(env.proxy_url("alice/echo-body"))
            .bearer_auth(&env.proxy_key)
            .body(chunked(11 * MIB))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(streamed.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(problem_code(&streamed), "payload_too_large");
    assert_eq!(env.provider.api_calls(), 0);
    let outcomes: Vec<Value> = env
        .proxy_audit()
        .await
        .iter()
        .map(|r| r["outcome"].clone())
        .collect();
    assert_eq!(outcomes, ["payload_too_large", "payload_too_large"]);
}

#[tokio::test]
async fn a_streamed_body_over_the_replay_limit_is_not_retried_after_a_401() {
    let env = proxy_env().await;
    env.provider.refuse_api_tokens(1);
    let answer = read(
        env.app
            .client
            .post(env.proxy_url("alice/echo-body"))
            .bearer_auth(&env.proxy_key)
            .body(chunked(2 * MIB))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(env.provider.refresh_calls(), 0);
    assert_eq!(env.provider.api_calls(), 1);
}

#[tokio::test]
async fn responses_over_the_limit_are_refused_when_announced_and_cut_off_when_streamed() {
    let env = proxy_env().await;
    let announced = env.get(&format!("alice/bytes?n={}", 11 * MIB)).await;
    assert_eq!(announced.status, StatusCode::BAD_GATEWAY);
    assert_eq!(problem_code(&announced), "response_too_large");

    let within = env
        .get(&format!("alice/bytes?n={}&chunked=true", MIB))
        .await;
    assert_eq!(within.status, StatusCode::OK);
    assert_eq!(within.text.len(), MIB);

    // A body without Content-Length that grows past the limit: the status line has
    // gone out already, so the caller sees the body end early with an error.
    let streamed = env
        .app
        .client
        .get(env.proxy_url(&format!("alice/bytes?n={}&chunked=true", 11 * MIB)))
        .bearer_auth(&env.proxy_key)
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), StatusCode::OK);
    assert!(streamed.bytes().await.is_err());

    let metrics = send(&env.app, Method::GET, "/metrics", Auth::None, None).await;
    assert!(
        metrics
            .text
            .contains("tokenwarden_proxy_responses_truncated_total 1"),
        "{}",
        metrics.text
    );
    assert!(
        metrics
            .text
            .contains("tokenwarden_proxy_requests_total{outcome=\"response_too_large\"} 1")
    );
    assert!(
        metrics
            .text
            .contains("tokenwarden_proxy_requests_total{outcome=\"2xx\"} 2")
    );
    assert!(!metrics.text.contains("alice"));
}
