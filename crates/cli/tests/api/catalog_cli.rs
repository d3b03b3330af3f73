//! The operator catalog directory and `tokenwarden providers`, against the real binary.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_tokenwarden");

const ACME: &str = r#"
key = "acme"
display_name = "Acme"
docs = ["https://acme.example/docs/oauth"]
authorization_url = "https://acme.example/oauth/authorize"
token_url = "https://acme.example/oauth/token"
"#;

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BINARY);
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("TOKENWARDEN_PROVIDERS_DIR")
        .env_remove("TOKENWARDEN_DATABASE_URL")
        .env_remove("TOKENWARDEN_CONFIG")
        .kill_on_drop(true);
    cmd
}

async fn finished(mut cmd: Command) -> std::process::Output {
    tokio::time::timeout(Duration::from_secs(20), cmd.output())
        .await
        .expect("the command finished by itself")
        .unwrap()
}

#[tokio::test]
async fn a_malformed_catalog_file_stops_serve_naming_the_file_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let providers = dir.path().join("providers");
    std::fs::create_dir(&providers).unwrap();
    std::fs::write(providers.join("acme.toml"), ACME).unwrap();
    std::fs::write(
        providers.join("broken.toml"),
        format!(
            "{}\n[token_response]\nexpires_in_unit = \"hours\"\n",
            ACME.replace("\"acme\"", "\"broken\"")
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = command(dir.path(), &["serve"]);
    cmd.env("TOKENWARDEN_LISTEN", format!("127.0.0.1:{port}"))
        .env("TOKENWARDEN_PROVIDERS_DIR", &providers);
    let output = finished(cmd).await;

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let file = providers.join("broken.toml");
    assert!(
        stderr.contains(&format!(
            "tokenwarden: {}: token_response.expires_in_unit: unknown variant `hours`",
            file.display()
        )),
        "{stderr}"
    );
    assert!(
        !dir.path().join("tokenwarden.db").exists(),
        "nothing was created"
    );
}

#[tokio::test]
async fn providers_lists_builtin_and_operator_entries_offline() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("acme.toml"), ACME).unwrap();
    let dir_arg = dir.path().to_str().unwrap();

    let json = finished(command(
        dir.path(),
        &["providers", "--json", "--providers-dir", dir_arg],
    ))
    .await;
    assert!(
        json.status.success(),
        "{}",
        String::from_utf8_lossy(&json.stderr)
    );
    let list: Value = serde_json::from_slice(&json.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 34);
    let acme = list.iter().find(|p| p["key"] == "acme").unwrap();
    assert_eq!(
        acme["source"],
        dir.path().join("acme.toml").display().to_string()
    );
    assert_eq!(acme["token_url"], "https://acme.example/oauth/token");
    let xero = list.iter().find(|p| p["key"] == "xero").unwrap();
    assert_eq!(xero["source"], "builtin");
    assert_eq!(xero["refresh"]["grace_period_secs"], 1800);

    let table = finished(command(
        dir.path(),
        &["providers", "--providers-dir", dir_arg],
    ))
    .await;
    assert!(table.status.success());
    let text = String::from_utf8_lossy(&table.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 35, "{text}");
    assert!(lines[0].starts_with("KEY "), "{text}");
    let shopify: Vec<&str> = lines
        .iter()
        .find(|l| l.starts_with("shopify "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        shopify,
        [
            "shopify", "Shopify", "post", "no", "never", "no", "shop", "builtin"
        ]
    );
}

#[tokio::test]
async fn providers_refuses_a_bad_operator_file_the_way_serve_does() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("acme.toml"),
        ACME.replace(
            "https://acme.example/oauth/token",
            "http://acme.example/oauth/token",
        ),
    )
    .unwrap();
    let output = finished(command(
        dir.path(),
        &["providers", "--providers-dir", dir.path().to_str().unwrap()],
    ))
    .await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{}: token_url: is not allowed",
            dir.path().join("acme.toml").display()
        )),
        "{stderr}"
    );
}
