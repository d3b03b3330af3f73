//! Client authentication at the token endpoint (RFC 6749 §2.3.1).

use reqwest::StatusCode;
use tokenwarden_fake_provider::{
    ClientAuthPolicy, ClientRegistration, FakeProvider, FakeProviderConfig,
};

use crate::support::*;

const ID: &str = "app:1 +x";
const SECRET: &str = "s3cr%t:+/=&é ";

async fn special_client() -> FakeProvider {
    start_with(FakeProviderConfig::with_client(ClientRegistration::new(
        ID, SECRET,
    )))
    .await
}

async fn code_for(p: &FakeProvider) -> String {
    let (_, location) = authorize_raw(p, &[]).await;
    query(&location.unwrap())["code"].clone()
}

fn code_form(code: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.to_owned()),
        ("redirect_uri", REDIRECT_URI.to_owned()),
    ]
}

#[tokio::test]
async fn basic_auth_decodes_form_urlencoded_id_and_secret() {
    let p = special_client().await;
    let code = code_for(&p).await;

    let response = http()
        .post(p.token_endpoint())
        .header("authorization", basic(ID, SECRET))
        .form(&code_form(&code))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn basic_auth_without_the_urlencoding_step_is_rejected() {
    use base64::Engine as _;
    let p = special_client().await;
    let code = code_for(&p).await;
    let raw = base64::engine::general_purpose::STANDARD.encode(format!("{ID}:{SECRET}"));

    let response = http()
        .post(p.token_endpoint())
        .header("authorization", format!("Basic {raw}"))
        .form(&code_form(&code))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(json_error(response).await.1, "invalid_client");
}

#[tokio::test]
async fn client_secret_post_works_with_special_characters() {
    let p = special_client().await;
    let code = code_for(&p).await;
    let mut form = code_form(&code);
    form.push(("client_id", ID.to_owned()));
    form.push(("client_secret", SECRET.to_owned()));

    let response = http()
        .post(p.token_endpoint())
        .form(&form)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_policy_refuses_the_other_method() {
    let p = start().await;
    p.set_client_auth(ClientAuthPolicy::Basic);
    let code = code_for(&p).await;
    let mut form = code_form(&code);
    form.push(("client_id", p.client_id().to_owned()));
    form.push(("client_secret", p.client_secret().unwrap().to_owned()));

    let post = http()
        .post(p.token_endpoint())
        .form(&form)
        .send()
        .await
        .unwrap();
    p.set_client_auth(ClientAuthPolicy::Post);
    let basic_call = token(&p, &[("grant_type", "authorization_code"), ("code", &code)]).await;

    assert_eq!(
        json_error(post).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".to_owned())
    );
    assert_eq!(json_error(basic_call).await.1, "invalid_client");
}

#[tokio::test]
async fn two_authentication_methods_at_once_are_invalid_request() {
    let p = start().await;
    let code = code_for(&p).await;

    let response = token(
        &p,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("client_secret", "fake-client-secret"),
        ],
    )
    .await;

    assert_eq!(
        json_error(response).await,
        (StatusCode::BAD_REQUEST, "invalid_request".to_owned())
    );
}

#[tokio::test]
async fn a_wrong_secret_is_invalid_client() {
    let p = start().await;
    let code = code_for(&p).await;

    let response = http()
        .post(p.token_endpoint())
        .header("authorization", basic(p.client_id(), "wrong"))
        .form(&code_form(&code))
        .send()
        .await
        .unwrap();

    assert_eq!(
        json_error(response).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".to_owned())
    );
}

#[tokio::test]
async fn a_code_issued_to_another_client_is_invalid_grant() {
    let config = FakeProviderConfig {
        clients: vec![
            ClientRegistration::new("a", "sa"),
            ClientRegistration::new("b", "sb"),
        ],
        ..FakeProviderConfig::default()
    };
    let p = start_with(config).await;
    let code = code_for(&p).await; // issued to "a", the first client

    let response = http()
        .post(p.token_endpoint())
        .header("authorization", basic("b", "sb"))
        .form(&code_form(&code))
        .send()
        .await
        .unwrap();

    assert_eq!(json_error(response).await.1, "invalid_grant");
}

#[tokio::test]
async fn a_public_client_identifies_itself_by_client_id_alone() {
    let public = ClientRegistration {
        client_id: "public-app".to_owned(),
        client_secret: None,
        redirect_uris: vec![REDIRECT_URI.to_owned()],
    };
    let p = start_with(FakeProviderConfig::with_client(public)).await;
    let code = code_for(&p).await;
    let mut form = code_form(&code);
    form.push(("client_id", "public-app".to_owned()));

    let response = http()
        .post(p.token_endpoint())
        .form(&form)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
}
