//! Interoperability: the Standard Webhooks reference libraries' published test vectors,
//! and verification of our headers by the published `standardwebhooks` crate (1.0.1,
//! whose `verify` reads the system clock, so those tests sign at the current time).

use axum::http::{HeaderMap, HeaderValue};
use tokenwarden_webhooks::{Event, EventType, WebhookSecret, sign, verify};

/// From libraries/go/webhook_test.go (`TestWebhookSign`), repeated in the JavaScript,
/// Java, PHP and C# libraries of github.com/standard-webhooks/standard-webhooks.
#[test]
fn the_reference_libraries_signature_vector_matches() {
    let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let header = sign(
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1_614_265_330,
        br#"{"test": 2432232314}"#,
        &[&secret],
    );
    assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

/// From libraries/rust/src/lib.rs (`test_sign`) of the same repository.
#[test]
fn the_reference_rust_librarys_signature_vector_matches() {
    let secret = WebhookSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
    let header = sign(
        "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
        1_649_367_553,
        br#"{"email":"test@example.com","username":"test_user"}"#,
        &[&secret],
    );
    assert_eq!(header, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    assert_eq!(
        verify(
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1_649_367_553,
            br#"{"email":"test@example.com","username":"test_user"}"#,
            &header,
            &secret,
            1_649_367_600,
        ),
        Ok(())
    );
}

fn headers(id: &str, timestamp: i64, signature: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert("webhook-id", HeaderValue::from_str(id).unwrap());
    map.insert("webhook-timestamp", HeaderValue::from(timestamp));
    map.insert(
        "webhook-signature",
        HeaderValue::from_str(signature).unwrap(),
    );
    map
}

#[test]
fn the_published_crate_verifies_our_delivery_under_our_generated_secret() {
    let secret = WebhookSecret::generate();
    let now = chrono::Utc::now();
    let event = Event::new(
        EventType::ConnectionCreated,
        now,
        serde_json::json!({"connection_id": "con_abc", "provider": "github"}),
    );
    let body = event.body();
    let header = sign(&event.id, now.timestamp(), body.as_bytes(), &[&secret]);

    use secrecy::ExposeSecret;
    let receiver = standardwebhooks::Webhook::new(secret.as_text().expose_secret()).unwrap();
    receiver
        .verify(
            body.as_bytes(),
            &headers(&event.id, now.timestamp(), &header),
        )
        .unwrap();
    // And it refuses the same delivery with one byte of the body changed.
    let tampered = body.replacen("github", "gitlab", 1);
    assert!(
        receiver
            .verify(
                tampered.as_bytes(),
                &headers(&event.id, now.timestamp(), &header)
            )
            .is_err()
    );
}

#[test]
fn the_published_crate_accepts_a_two_secret_header_under_either_secret_only() {
    use secrecy::ExposeSecret;
    let current = WebhookSecret::generate();
    let previous = WebhookSecret::generate();
    // The published 1.0.1 verifies against the system clock only.
    let ts = chrono::Utc::now().timestamp();
    let (id, body) = ("msg_01JZ0000000000000000000000", b"{}");
    let header = sign(id, ts, body, &[&current, &previous]);
    for secret in [&current, &previous] {
        let receiver = standardwebhooks::Webhook::new(secret.as_text().expose_secret()).unwrap();
        receiver.verify(body, &headers(id, ts, &header)).unwrap();
    }
    let stranger =
        standardwebhooks::Webhook::new(WebhookSecret::generate().as_text().expose_secret())
            .unwrap();
    assert!(stranger.verify(body, &headers(id, ts, &header)).is_err());
}

#[test]
fn our_verify_accepts_the_published_crates_signature() {
    use secrecy::ExposeSecret;
    let secret = WebhookSecret::generate();
    let signer = standardwebhooks::Webhook::new(secret.as_text().expose_secret()).unwrap();
    let header = signer.sign("msg_x", 1_700_000_000, br#"{"a":1}"#).unwrap();
    assert_eq!(
        verify(
            "msg_x",
            1_700_000_000,
            br#"{"a":1}"#,
            &header,
            &secret,
            1_700_000_010
        ),
        Ok(())
    );
}
