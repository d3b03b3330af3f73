//! Parallel callers: the strict rotation behaviour tokenwarden must survive.

use reqwest::StatusCode;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_parallel_refreshes_with_one_token_let_one_win_and_revoke_the_grant() {
    let p = std::sync::Arc::new(start().await);
    let body = connect(&p).await;
    let rt = s(&body["refresh_token"]).to_owned();

    let calls = (0..10).map(|_| {
        let p = p.clone();
        let rt = rt.clone();
        tokio::spawn(async move {
            let response = refresh(&p, &rt).await;
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap();
            (status, body)
        })
    });
    let mut results = Vec::new();
    for call in calls.collect::<Vec<_>>() {
        results.push(call.await.unwrap());
    }

    let winners: Vec<_> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .collect();
    assert_eq!(winners.len(), 1);
    assert!(
        results
            .iter()
            .filter(|(s, _)| *s != StatusCode::OK)
            .all(|(s, b)| *s == StatusCode::BAD_REQUEST && b["error"] == "invalid_grant")
    );
    let grant = p.latest_grant().unwrap();
    assert!(grant.revoked);
    assert!(!p.is_access_token_valid(s(&winners[0].1["access_token"])));
    assert_eq!(p.refresh_calls(), 10);
    assert_eq!(p.successful_refreshes(), 1);
    assert_eq!(
        p.reuse_detections(),
        1,
        "the first replay revokes; later ones find a revoked token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_hundred_fifty_parallel_requests_are_all_counted_and_logged() {
    let p = std::sync::Arc::new(start().await);
    let body = connect(&p).await;
    let at = s(&body["access_token"]).to_owned();
    p.clear_requests();

    let calls: Vec<_> = (0..150)
        .map(|i| {
            let p = p.clone();
            let at = at.clone();
            tokio::spawn(async move {
                http()
                    .get(format!("{}/item/{i}", p.api_base_url()))
                    .bearer_auth(at)
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), StatusCode::OK);
    }

    assert_eq!(p.api_calls(), 150);
    assert_eq!(p.requests().len(), 150);
}
