//! `tokenwarden refresher`: the background refresher a zero-knowledge vault's owner runs
//! (docs/design.md, "Living with the keys"). The server cannot open such a vault while
//! nobody is present, so this process holds a `refresh`-role key, lists the connections
//! that are due and asks the server to refresh them. It never receives a token.

mod api;
mod plan;
mod telemetry;
mod worker;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use tokenwarden_crypto::ApiKey;
use tokenwarden_domain::Role;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;
use url::Url;

use self::api::{Api, Whoami};
use self::telemetry::Telemetry;
use self::worker::Worker;

pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

#[derive(Args)]
pub struct RefresherArgs {
    /// The tokenwarden server.
    #[arg(long, env = "TOKENWARDEN_URL", default_value = DEFAULT_URL)]
    url: String,
    /// An API key with the `refresh` role (prefer --api-key-file: a flag shows in `ps`).
    #[arg(long, env = "TOKENWARDEN_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// File holding the API key.
    #[arg(long, env = "TOKENWARDEN_API_KEY_FILE", value_name = "FILE")]
    api_key_file: Option<PathBuf>,
    /// Seconds between polls (sooner when a refresh comes due before).
    #[arg(
        long,
        env = "TOKENWARDEN_REFRESHER_INTERVAL",
        value_name = "SECONDS",
        default_value_t = 30
    )]
    interval: u64,
    /// Ask for the connections due within this many seconds; those due later within it
    /// are waited for, not refreshed early.
    #[arg(
        long,
        env = "TOKENWARDEN_REFRESHER_LOOKAHEAD",
        value_name = "SECONDS",
        default_value_t = 300
    )]
    lookahead: u64,
    /// Refreshes in flight at most.
    #[arg(
        long,
        env = "TOKENWARDEN_REFRESHER_CONCURRENCY",
        value_name = "N",
        default_value_t = 4
    )]
    concurrency: usize,
    /// Address of the refresher's own /healthz and /metrics (port 0: any free port, logged).
    #[arg(
        long,
        env = "TOKENWARDEN_REFRESHER_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:9464"
    )]
    listen: String,
    /// Log filter, e.g. `info` or `tokenwarden=debug`.
    #[arg(long, env = "TOKENWARDEN_LOG", default_value = "info")]
    log: String,
}

impl fmt::Debug for RefresherArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefresherArgs")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("api_key_file", &self.api_key_file)
            .field("interval", &self.interval)
            .field("lookahead", &self.lookahead)
            .field("concurrency", &self.concurrency)
            .field("listen", &self.listen)
            .field("log", &self.log)
            .finish()
    }
}

/// The checked settings.
#[derive(Debug)]
struct Settings {
    url: Url,
    api_key: ApiKey,
    interval: Duration,
    lookahead_secs: u64,
    concurrency: usize,
    listen: SocketAddr,
    log: String,
}

fn server_url(text: &str) -> anyhow::Result<Url> {
    let url = Url::parse(text.trim()).map_err(|_| {
        anyhow!("TOKENWARDEN_URL must be a URL such as {DEFAULT_URL}, not {text:?}")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        bail!("TOKENWARDEN_URL must start with http:// or https://");
    }
    // Credentials in the URL would reach log lines and error messages.
    if !url.username().is_empty() || url.password().is_some() {
        bail!(
            "TOKENWARDEN_URL must not hold a user name or password; the API key is the credential"
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("TOKENWARDEN_URL must not have a query or fragment");
    }
    Ok(url)
}

impl RefresherArgs {
    fn resolve(self) -> anyhow::Result<Settings> {
        let url = server_url(&self.url)?;
        let key = crate::config::secret(self.api_key, self.api_key_file, "TOKENWARDEN_API_KEY")?
            .ok_or_else(|| {
                anyhow!("the refresher needs an API key with the refresh role: set TOKENWARDEN_API_KEY or TOKENWARDEN_API_KEY_FILE (or --api-key / --api-key-file)")
            })?;
        let api_key = ApiKey::parse(key.trim())
            .map_err(|_| anyhow!("TOKENWARDEN_API_KEY is not a tokenwarden API key (twk_...)"))?;
        if !(1..=86_400).contains(&self.interval) {
            bail!("--interval must be between 1 and 86400 seconds");
        }
        if self.lookahead > 30 * 86_400 {
            bail!("--lookahead must be at most 2592000 seconds (30 days)");
        }
        if !(1..=256).contains(&self.concurrency) {
            bail!("--concurrency must be between 1 and 256");
        }
        let listen: SocketAddr = self.listen.parse().map_err(|_| {
            anyhow!(
                "--listen must be an address such as 127.0.0.1:9464, not {:?}",
                self.listen
            )
        })?;
        Ok(Settings {
            url,
            api_key,
            interval: Duration::from_secs(self.interval),
            lookahead_secs: self.lookahead,
            concurrency: self.concurrency,
            listen,
            log: self.log,
        })
    }
}

/// Whether a key with these roles can both list connections and refresh them.
fn can_refresh(who: &Whoami) -> bool {
    let list = [Role::Read, Role::Proxy, Role::Refresh];
    let refresh = [Role::Connect, Role::Refresh];
    list.iter().any(|r| who.roles.allows(*r)) && refresh.iter().any(|r| who.roles.allows(*r))
}

/// Checks the key with `GET /v1/whoami`, retrying a server that is not up yet a few
/// times (a refresher often starts beside its server).
async fn check_key(api: &Api, key_id: &str) -> anyhow::Result<Whoami> {
    let mut delay = Duration::from_secs(1);
    let who = loop {
        match api.whoami().await {
            Ok(who) => break who,
            Err(e) if e.transient() && delay <= Duration::from_secs(8) => {
                warn!(error = %e, retry_in_secs = delay.as_secs(), "checking the API key failed");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) if e.status() == Some(reqwest::StatusCode::UNAUTHORIZED) => {
                bail!(
                    "the server refused the API key {key_id} (401): it is unknown, revoked or expired"
                )
            }
            Err(e) => return Err(anyhow!(e).context("checking the API key with GET /v1/whoami")),
        }
    };
    if !can_refresh(&who) {
        let roles: Vec<&str> = who.roles.iter().map(Role::as_str).collect();
        bail!(
            "the API key {key_id} has the role(s) {} but the refresher needs the refresh role \
             (or admin, or connect with read or proxy): create one with \
             POST /v1/api-keys {{\"name\": \"refresher\", \"roles\": [\"refresh\"]}}",
            roles.join(", ")
        );
    }
    Ok(who)
}

pub async fn run(args: RefresherArgs) -> anyhow::Result<()> {
    let settings = args.resolve()?;
    let filter = EnvFilter::try_new(&settings.log)
        .with_context(|| format!("TOKENWARDEN_LOG: invalid filter {:?}", settings.log))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let key_id = settings.api_key.id().to_string();
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("could not listen on {}", settings.listen))?;
    let listen = listener.local_addr().context("reading the bound address")?;
    let api = Arc::new(Api::new(settings.url.clone(), settings.api_key)?);
    let who = check_key(&api, &key_id).await?;
    info!(
        url = %settings.url,
        vault.id = %who.vault_id,
        key.id = %key_id,
        %listen,
        interval_secs = settings.interval.as_secs(),
        lookahead_secs = settings.lookahead_secs,
        concurrency = settings.concurrency,
        version = env!("CARGO_PKG_VERSION"),
        "tokenwarden refresher started"
    );

    let telemetry = Arc::new(Telemetry::new(settings.interval));
    let (stop_tx, stop_rx) = watch::channel(false);
    let http = tokio::spawn(telemetry::serve(
        listener,
        telemetry.clone(),
        stop_rx.clone(),
    ));
    let signals = tokio::spawn(async move {
        crate::serve::shutdown_signal().await;
        info!("stopping: signal received");
        let _ = stop_tx.send(true);
    });
    let worker = Worker::new(
        api,
        telemetry,
        settings.interval,
        settings.lookahead_secs,
        settings.concurrency,
    );
    worker.run(stop_rx).await;
    signals.abort();
    match http.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!(error = %e, "the /healthz and /metrics server failed"),
        Err(e) => warn!(error = %e, "the /healthz and /metrics server ended abnormally"),
    }
    info!("tokenwarden refresher stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::api::CallError;
    use super::*;

    fn whoami(roles: &str) -> Whoami {
        serde_json::from_str(&format!(
            r#"{{"vault_id":"v","key_id":"k","roles":{roles}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn only_keys_that_can_list_and_refresh_may_run_the_refresher() {
        assert!(can_refresh(&whoami(r#"["refresh"]"#)));
        assert!(can_refresh(&whoami(r#"["admin"]"#)));
        assert!(can_refresh(&whoami(r#"["connect","read"]"#)));
        assert!(!can_refresh(&whoami(r#"["read"]"#)));
        assert!(!can_refresh(&whoami(r#"["connect"]"#)));
        assert!(!can_refresh(&whoami(r#"["proxy"]"#)));
    }

    #[test]
    fn the_server_url_must_be_plain_http_or_https() {
        assert_eq!(
            server_url("http://127.0.0.1:8080").unwrap().as_str(),
            "http://127.0.0.1:8080/"
        );
        assert!(server_url("https://vault.example.com/tw/").is_ok());
        for bad in [
            "ftp://x",
            "mailto:a@b",
            "https://u:p@x",
            "http://x/?a=1",
            "not a url",
        ] {
            assert!(server_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_arguments_never_show_the_key() {
        let key = ApiKey::generate();
        let args = RefresherArgs {
            url: DEFAULT_URL.into(),
            api_key: Some(key.expose_secret().to_owned()),
            api_key_file: None,
            interval: 30,
            lookahead: 300,
            concurrency: 4,
            listen: "127.0.0.1:0".into(),
            log: "info".into(),
        };
        assert!(!format!("{args:?}").contains(key.expose_secret()));
        let settings = args.resolve().unwrap();
        assert!(!format!("{settings:?}").contains(key.expose_secret()));
    }

    #[test]
    fn a_key_and_a_key_file_together_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        let key = ApiKey::generate();
        std::fs::write(&file, format!("  {}\n", key.expose_secret())).unwrap();
        let args = |inline: Option<String>| RefresherArgs {
            url: DEFAULT_URL.into(),
            api_key: inline,
            api_key_file: Some(file.clone()),
            interval: 30,
            lookahead: 300,
            concurrency: 4,
            listen: "127.0.0.1:0".into(),
            log: "info".into(),
        };
        let both = args(Some(key.expose_secret().to_owned()))
            .resolve()
            .unwrap_err();
        assert_eq!(
            both.to_string(),
            "TOKENWARDEN_API_KEY and TOKENWARDEN_API_KEY_FILE are both set; set only one"
        );
        let from_file = args(None).resolve().unwrap();
        assert_eq!(from_file.api_key.expose_secret(), key.expose_secret());
    }

    #[test]
    fn a_malformed_key_is_refused_without_echoing_it() {
        let args = RefresherArgs {
            url: DEFAULT_URL.into(),
            api_key: Some("twk_not-a-real-key-s3cr3t".into()),
            api_key_file: None,
            interval: 30,
            lookahead: 300,
            concurrency: 4,
            listen: "127.0.0.1:0".into(),
            log: "info".into(),
        };
        let e = args.resolve().unwrap_err().to_string();
        assert_eq!(
            e,
            "TOKENWARDEN_API_KEY is not a tokenwarden API key (twk_...)"
        );
    }

    #[test]
    fn a_transport_error_is_worth_retrying_and_a_refusal_is_not() {
        assert!(CallError::Transport("refused".into()).transient());
        assert!(!CallError::Decode("eof".into()).transient());
    }
}
