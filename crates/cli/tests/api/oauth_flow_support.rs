//! What the connect-flow tests share: a connect session for a connection id, and a
//! page fetched as the browser.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::Auth;
use crate::oauth_support::{OAuthEnv, fetch};

pub async fn get_page(env: &OAuthEnv, url: &str) -> crate::helpers::Answer {
    fetch(&env.app.client, Method::GET, url, Auth::None, None).await
}

pub async fn new_session(env: &OAuthEnv, connection_id: &str) -> Value {
    env.start_session(&json!({"app": "fake", "connection_id": connection_id}))
        .await
        .expect_json(StatusCode::CREATED)
}
