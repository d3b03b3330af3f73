//! The application under test.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use tokenwarden_crypto::MasterKey;
use tokenwarden_server::{App, ProxySettings, ServerConfig, Signup};
use tokio::sync::oneshot;

use crate::{ManualClock, TestDatabase};

/// Options for [`spawn_app_with`].
#[derive(Debug, Default)]
pub struct SpawnOptions {
    pub signup_closed: bool,
    /// 32 bytes to use as the master key.
    pub master_key: Option<[u8; 32]>,
    /// Reuse this directory's database (to restart a server on the same SQLite file).
    pub data_dir: Option<Arc<tempfile::TempDir>>,
    /// Reuse this database (to restart a server on the same database, any backend).
    pub database: Option<Arc<TestDatabase>>,
    /// Refresh lease length (default 45 s).
    pub refresh_lease_secs: Option<u64>,
    /// Origins allowed in `return_to`.
    pub return_origins: Vec<String>,
    /// Provider definitions added to (or replacing entries of) the built-in catalog.
    pub extra_providers: Vec<tokenwarden_service::ProviderSpec>,
    /// Refuse http:// and non-global provider addresses, as in production (the default
    /// here allows them, since the fake provider listens on 127.0.0.1).
    pub strict_outbound: bool,
    /// The API proxy's limits and resolver (default: [`ProxySettings::default`]).
    pub proxy: Option<ProxySettings>,
    /// The background workers' settings (default: no background workers).
    pub lifecycle: Option<tokenwarden_service::LifecycleSettings>,
}

/// A running server and what a test needs to talk to it.
#[derive(Debug)]
pub struct TestApp {
    pub addr: SocketAddr,
    pub base_url: String,
    pub client: Client,
    pub clock: Arc<ManualClock>,
    pub dir: Arc<tempfile::TempDir>,
    /// The app's database (dropped, on a server backend, when the last handle goes).
    pub database: Arc<TestDatabase>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// An account with a vault and its first admin key.
#[derive(Debug, Clone)]
pub struct TestVault {
    pub email: String,
    pub password: String,
    pub vault_id: String,
    pub admin_key: String,
    pub admin_key_id: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(SpawnOptions::default()).await
}

pub async fn spawn_app_with(options: SpawnOptions) -> TestApp {
    let database = match (options.database, &options.data_dir) {
        (Some(db), _) => db,
        (None, Some(dir)) => Arc::new(TestDatabase::sqlite_in(dir.clone())),
        (None, None) => Arc::new(TestDatabase::from_env().await),
    };
    let dir = options
        .data_dir
        .unwrap_or_else(|| Arc::new(tempfile::tempdir().expect("temp dir")));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let clock = Arc::new(ManualClock::default());
    let config = ServerConfig {
        listen: addr,
        public_url: format!("http://{addr}"),
        refresh_skew_secs: 60,
        return_origins: options.return_origins,
        master_key: options.master_key.map(MasterKey::from_bytes),
        signup: if options.signup_closed {
            Signup::Closed
        } else {
            Signup::Open
        },
        allow_loopback_providers: !options.strict_outbound,
        refresh_lease_secs: options.refresh_lease_secs.unwrap_or(45),
        connect_link_ttl_secs: 1800,
        extra_providers: options.extra_providers,
        extra_routes: None,
        proxy: options.proxy.unwrap_or_default(),
        // Off unless a test asks: most tests count provider calls exactly, and a
        // background refresh would add its own.
        lifecycle: options
            .lifecycle
            .unwrap_or(tokenwarden_service::LifecycleSettings {
                background: false,
                ..Default::default()
            }),
        server_key_file: Some(dir.path().join("tokenwarden-server.key")),
    };
    let store = tokenwarden_store_select::open_store(database.url())
        .await
        .expect("the test database opens");
    let app = App::build_with_clock(config, store, clock.clone())
        .await
        .expect("the application builds");
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.serve(listener, async {
            let _ = rx.await;
        })
        .await
        .expect("server runs");
    });
    TestApp {
        addr,
        base_url: format!("http://{addr}"),
        client: Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client"),
        clock,
        dir,
        database,
        shutdown: Some(tx),
        task: Some(task),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Stops the server and waits until it has.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get_with_key(&self, path: &str, key: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request")
    }

    pub async fn post_with_key(&self, path: &str, key: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn delete_with_key(&self, path: &str, key: &str) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request")
    }

    pub fn basic(email: &str, password: &str) -> String {
        let raw = format!("{email}:{password}");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    pub async fn post_with_password(
        &self,
        path: &str,
        email: &str,
        password: &str,
        body: &Value,
    ) -> Response {
        self.client
            .post(self.url(path))
            .header("authorization", Self::basic(email, password))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn create_account(&self, email: &str, password: &str) -> Value {
        let r = self
            .post_json(
                "/v1/accounts",
                &json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED, "account creation");
        r.json().await.expect("json")
    }

    /// An account, a vault and its admin key.
    pub async fn vault(&self, email: &str) -> TestVault {
        let password = "correct horse battery staple";
        self.create_account(email, password).await;
        let r = self
            .post_with_password("/v1/vaults", email, password, &json!({"name": "team"}))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED, "vault creation");
        let body: Value = r.json().await.expect("json");
        TestVault {
            email: email.to_owned(),
            password: password.to_owned(),
            vault_id: body["id"].as_str().expect("vault id").to_owned(),
            admin_key: body["api_key"]["key"].as_str().expect("key").to_owned(),
            admin_key_id: body["api_key"]["id"].as_str().expect("key id").to_owned(),
        }
    }

    /// A key with `roles` made by the vault's admin key; returns (id, key).
    pub async fn key(&self, vault: &TestVault, roles: &[&str]) -> (String, String) {
        let r = self
            .post_with_key(
                "/v1/api-keys",
                &vault.admin_key,
                &json!({"name": "test key", "roles": roles}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED, "key creation");
        let body: Value = r.json().await.expect("json");
        (
            body["id"].as_str().expect("id").to_owned(),
            body["key"].as_str().expect("key").to_owned(),
        )
    }

    /// The SQLite file under the app, or `None` (and a note saying `why` the test is
    /// skipped) when the suite runs on another backend.
    pub fn sqlite_file(&self, why: &str) -> Option<std::path::PathBuf> {
        let path = self
            .database
            .sqlite_path()
            .map(std::path::Path::to_path_buf);
        if path.is_none() {
            eprintln!("note: skipped on {:?}: {why}", self.database.backend());
        }
        path
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
