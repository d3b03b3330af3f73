//! The settings' layering and validation, as tests.

use super::*;

fn args() -> ServeArgs {
    ServeArgs {
        config: None,
        listen: None,
        database_url: None,
        database_url_file: None,
        public_url: None,
        refresh_skew_seconds: None,
        return_origins: None,
        master_key: None,
        master_key_file: None,
        signup: None,
        allow_loopback_providers: None,
        log: None,
        refresh_lease_seconds: None,
        connect_link_ttl_seconds: None,
        providers_dir: None,
        proxy_max_body_bytes: None,
        proxy_connect_timeout_seconds: None,
        proxy_timeout_seconds: None,
        server_key_file: None,
        expiring_notice_seconds: None,
        background: None,
        lifecycle_tick_ms: None,
        lifecycle_claim_seconds: None,
        dev: false,
    }
}

#[test]
fn lifecycle_settings_default_and_are_checked() {
    let s = args().resolve().unwrap();
    assert!(s.server.lifecycle.background);
    assert_eq!(s.server.lifecycle.expiring_notice_secs, 86_400);
    assert_eq!(
        s.server.server_key_file.as_deref(),
        Some(std::path::Path::new("tokenwarden-server.key"))
    );
    let s = ServeArgs {
        background: Some("false".into()),
        expiring_notice_seconds: Some(3600),
        database_url: Some("sqlite:///var/lib/tw/tw.db".into()),
        ..args()
    }
    .resolve()
    .unwrap();
    assert!(!s.server.lifecycle.background);
    assert_eq!(s.server.lifecycle.expiring_notice_secs, 3600);
    assert_eq!(
        s.server.server_key_file.as_deref(),
        Some(std::path::Path::new("/var/lib/tw/tokenwarden-server.key"))
    );
    for bad in [
        ServeArgs {
            expiring_notice_seconds: Some(5),
            ..args()
        },
        ServeArgs {
            lifecycle_tick_ms: Some(0),
            ..args()
        },
        ServeArgs {
            lifecycle_claim_seconds: Some(0),
            ..args()
        },
        ServeArgs {
            background: Some("maybe".into()),
            ..args()
        },
    ] {
        assert!(bad.resolve().is_err());
    }
}

#[test]
fn defaults_follow_the_contract() {
    let s = args().resolve().unwrap();
    assert_eq!(s.server.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(s.database_url, DEFAULT_DATABASE_URL);
    assert_eq!(s.server.public_url, "http://127.0.0.1:8080");
    assert_eq!(s.server.refresh_skew_secs, 60);
    assert_eq!(s.server.signup, Signup::Open);
    assert!(!s.server.allow_loopback_providers);
    assert!(s.server.master_key.is_none());
    assert_eq!(s.server.proxy.max_body_bytes, 10 * 1024 * 1024);
    assert_eq!(s.server.proxy.connect_timeout, Duration::from_secs(5));
    assert_eq!(s.server.proxy.timeout, Duration::from_secs(30));
}

#[test]
fn proxy_limits_are_configurable_and_checked() {
    let s = ServeArgs {
        proxy_max_body_bytes: Some(2048),
        proxy_connect_timeout_seconds: Some(2),
        proxy_timeout_seconds: Some(9),
        ..args()
    }
    .resolve()
    .unwrap();
    assert_eq!(s.server.proxy.max_body_bytes, 2048);
    assert_eq!(s.server.proxy.connect_timeout, Duration::from_secs(2));
    assert_eq!(s.server.proxy.timeout, Duration::from_secs(9));
    for bad in [
        ServeArgs {
            proxy_max_body_bytes: Some(0),
            ..args()
        },
        ServeArgs {
            proxy_connect_timeout_seconds: Some(0),
            ..args()
        },
        ServeArgs {
            proxy_timeout_seconds: Some(1),
            ..args()
        },
    ] {
        assert!(bad.resolve().is_err());
    }
}

#[test]
fn flags_override_the_file_and_the_file_overrides_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tw.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:9000\"\nsignup = \"closed\"\nreturn_origins = [\"https://App.example.com/\"]\nrefresh_skew_seconds = 30\n",
    )
    .unwrap();
    let mut a = args();
    a.config = Some(path);
    a.refresh_skew_seconds = Some(90);
    let s = a.resolve().unwrap();
    assert_eq!(s.server.listen.to_string(), "127.0.0.1:9000");
    assert_eq!(s.server.signup, Signup::Closed);
    assert_eq!(s.server.refresh_skew_secs, 90);
    assert_eq!(s.server.return_origins, vec!["https://app.example.com"]);
    assert_eq!(s.server.public_url, "http://127.0.0.1:9000");
}

#[test]
fn a_secret_and_its_file_variant_together_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key");
    std::fs::write(&path, "00".repeat(32)).unwrap();
    let mut a = args();
    a.master_key = Some("11".repeat(32));
    a.master_key_file = Some(path.clone());
    let e = a.resolve().unwrap_err().to_string();
    assert!(e.contains("TOKENWARDEN_MASTER_KEY_FILE"), "{e}");
    assert!(!e.contains(&"11".repeat(32)), "{e}");

    let mut a = args();
    a.master_key_file = Some(path);
    assert!(a.resolve().unwrap().server.master_key.is_some());
}

#[test]
fn bad_values_are_refused_with_the_setting_named() {
    type Case = (fn(&mut ServeArgs), &'static str);
    let cases: Vec<Case> = vec![
        (
            |a| a.listen = Some("localhost".into()),
            "TOKENWARDEN_LISTEN",
        ),
        (|a| a.signup = Some("maybe".into()), "TOKENWARDEN_SIGNUP"),
        (
            |a| a.master_key = Some("short".into()),
            "TOKENWARDEN_MASTER_KEY",
        ),
        (
            |a| a.return_origins = Some("https://a.example/path".into()),
            "TOKENWARDEN_RETURN_ORIGINS",
        ),
        (
            |a| a.allow_loopback_providers = Some("perhaps".into()),
            "TOKENWARDEN_ALLOW_LOOPBACK_PROVIDERS",
        ),
        (
            |a| a.public_url = Some("ftp://x".into()),
            "TOKENWARDEN_PUBLIC_URL",
        ),
    ];
    for (set, name) in cases {
        let mut a = args();
        set(&mut a);
        let e = a.resolve().unwrap_err().to_string();
        assert!(e.contains(name), "{e}");
    }
}

#[test]
fn unknown_keys_in_the_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tw.toml");
    std::fs::write(&path, "listne = \"127.0.0.1:9000\"\n").unwrap();
    let mut a = args();
    a.config = Some(path);
    let e = format!("{:#}", a.resolve().unwrap_err());
    assert!(e.contains("listne"), "{e}");
}
