//! `tokenwarden serve` settings, layered: defaults < TOML file (`--config`) < environment
//! < flags. Names are fixed by docs/api.md ("Running the server"). Every secret has a
//! `*_FILE` variant; giving both forms of one setting is an error, not a silent choice.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use serde::Deserialize;
use tokenwarden_crypto::MasterKey;
use tokenwarden_server::{ProxySettings, ServerConfig, Signup};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://tokenwarden.db";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (snake_case keys, e.g. `listen`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to bind [default: 127.0.0.1:8080].
    #[arg(long, env = "TOKENWARDEN_LISTEN")]
    pub listen: Option<String>,
    /// sqlite://..., postgres://... or mysql://... [default: sqlite://tokenwarden.db].
    #[arg(long, env = "TOKENWARDEN_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// File holding the database URL (for URLs with a password).
    #[arg(long, env = "TOKENWARDEN_DATABASE_URL_FILE", value_name = "FILE")]
    pub database_url_file: Option<PathBuf>,
    /// Base of redirect URIs and connect links [default: http://<listen>].
    #[arg(long, env = "TOKENWARDEN_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Refresh a token that expires within this many seconds [default: 60].
    #[arg(long, env = "TOKENWARDEN_REFRESH_SKEW_SECONDS")]
    pub refresh_skew_seconds: Option<u64>,
    /// Comma-separated origins allowed in return_to.
    #[arg(long, env = "TOKENWARDEN_RETURN_ORIGINS")]
    pub return_origins: Option<String>,
    /// Master key for managed vaults (64 hex digits or base64 of 32 bytes).
    #[arg(long, env = "TOKENWARDEN_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,
    /// File holding the master key.
    #[arg(long, env = "TOKENWARDEN_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    /// `open` or `closed` [default: open].
    #[arg(long, env = "TOKENWARDEN_SIGNUP")]
    pub signup: Option<String>,
    /// Allow http:// and loopback or private provider addresses: development and tests only.
    #[arg(long, env = "TOKENWARDEN_ALLOW_LOOPBACK_PROVIDERS", num_args = 0..=1, default_missing_value = "true")]
    pub allow_loopback_providers: Option<String>,
    /// Log filter, e.g. `info` or `tokenwarden=debug` [default: info].
    #[arg(long, env = "TOKENWARDEN_LOG")]
    pub log: Option<String>,
    /// How long a refresh lease lasts, in seconds [default: 45]. A replica that dies
    /// mid-refresh blocks refreshes of that connection at most this long.
    #[arg(long, env = "TOKENWARDEN_REFRESH_LEASE_SECONDS", hide = true)]
    pub refresh_lease_seconds: Option<u64>,
    /// How long a connect link stays usable, in seconds [default: 1800].
    #[arg(long, env = "TOKENWARDEN_CONNECT_LINK_TTL_SECONDS")]
    pub connect_link_ttl_seconds: Option<u64>,
    /// Directory of provider catalog files (`*.toml`) that add providers or replace
    /// built-in ones; a bad file stops start-up with `<file>: <field>: <problem>`.
    #[arg(long, env = "TOKENWARDEN_PROVIDERS_DIR", value_name = "DIR")]
    pub providers_dir: Option<PathBuf>,
    /// Largest request and response body the API proxy passes on, in bytes [default: 10485760].
    #[arg(long, env = "TOKENWARDEN_PROXY_MAX_BODY_BYTES")]
    pub proxy_max_body_bytes: Option<u64>,
    /// Time allowed to connect to a provider's API through the proxy, in seconds [default: 5].
    #[arg(long, env = "TOKENWARDEN_PROXY_CONNECT_TIMEOUT_SECONDS")]
    pub proxy_connect_timeout_seconds: Option<u64>,
    /// Time allowed for a whole proxied exchange, in seconds [default: 30].
    #[arg(long, env = "TOKENWARDEN_PROXY_TIMEOUT_SECONDS")]
    pub proxy_timeout_seconds: Option<u64>,
    /// Key file that encrypts webhook signing secrets when no master key is set; created
    /// (mode 0600) on first start [default: tokenwarden-server.key beside the --config
    /// file, else beside a SQLite database file, else in the working directory].
    #[arg(long, env = "TOKENWARDEN_SERVER_KEY_FILE", value_name = "FILE")]
    pub server_key_file: Option<PathBuf>,
    /// Send `connection.expiring` this long before a token without a refresh token
    /// expires, in seconds [default: 86400].
    #[arg(long, env = "TOKENWARDEN_EXPIRING_NOTICE_SECONDS")]
    pub expiring_notice_seconds: Option<u64>,
    /// Run the background workers (refresh of managed vaults, expiry notices, webhook
    /// deliveries) in this process [default: true].
    #[arg(long, env = "TOKENWARDEN_BACKGROUND", num_args = 0..=1, default_missing_value = "true")]
    pub background: Option<String>,
    /// How often idle background workers look at their queues, in milliseconds [default: 1000].
    #[arg(long, env = "TOKENWARDEN_LIFECYCLE_TICK_MS", hide = true)]
    pub lifecycle_tick_ms: Option<u64>,
    /// How long a worker's claim on a due row lasts, in seconds [default: 120]: a process
    /// killed mid-delivery leaves the delivery due again after this long.
    #[arg(long, env = "TOKENWARDEN_LIFECYCLE_CLAIM_SECONDS", hide = true)]
    pub lifecycle_claim_seconds: Option<u64>,
    /// Zero-setup mode: a temporary database, loopback providers allowed, a built-in
    /// demo OAuth provider, and an admin API key printed at start.
    #[arg(long)]
    pub dev: bool,
}

/// The same settings, as a TOML file may give them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<String>,
    database_url: Option<String>,
    database_url_file: Option<PathBuf>,
    public_url: Option<String>,
    refresh_skew_seconds: Option<u64>,
    return_origins: Option<OneOrMany>,
    master_key: Option<String>,
    master_key_file: Option<PathBuf>,
    signup: Option<String>,
    allow_loopback_providers: Option<bool>,
    log: Option<String>,
    refresh_lease_seconds: Option<u64>,
    connect_link_ttl_seconds: Option<u64>,
    providers_dir: Option<PathBuf>,
    proxy_max_body_bytes: Option<u64>,
    proxy_connect_timeout_seconds: Option<u64>,
    proxy_timeout_seconds: Option<u64>,
    server_key_file: Option<PathBuf>,
    expiring_notice_seconds: Option<u64>,
    background: Option<bool>,
    lifecycle_tick_ms: Option<u64>,
    lifecycle_claim_seconds: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// The resolved settings, plus what only the binary needs (the log filter).
#[derive(Debug)]
pub struct Settings {
    pub server: ServerConfig,
    /// The database the binary opens for the server (`tokenwarden-store-select`).
    pub database_url: String,
    pub log: String,
}

fn read_secret_file(path: &Path, what: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read {what} file {}", path.display()))?;
    Ok(text.trim().to_owned())
}

/// Picks the inline or the `_FILE` form of a secret; both at once is an error.
pub(crate) fn secret(
    inline: Option<String>,
    file: Option<PathBuf>,
    name: &str,
) -> anyhow::Result<Option<String>> {
    match (inline, file) {
        (Some(_), Some(_)) => bail!("{name} and {name}_FILE are both set; set only one"),
        (Some(v), None) => Ok(Some(v)),
        (None, Some(path)) => read_secret_file(&path, name).map(Some),
        (None, None) => Ok(None),
    }
}

fn parse_bool(name: &str, v: &str) -> anyhow::Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => bail!("{name} must be true or false, not {v:?}"),
    }
}

fn origins(list: OneOrMany) -> anyhow::Result<Vec<String>> {
    let items = match list {
        OneOrMany::One(s) => s.split(',').map(|s| s.trim().to_owned()).collect(),
        OneOrMany::Many(v) => v,
    };
    items
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(|s| {
            let url = url_origin(&s)
                .ok_or_else(|| anyhow!("TOKENWARDEN_RETURN_ORIGINS: {s:?} is not an origin such as https://app.example.com"))?;
            Ok(url)
        })
        .collect()
}

/// `scheme://host[:port]` with nothing after it, normalised to lower case.
fn url_origin(s: &str) -> Option<String> {
    let (scheme, rest) = s.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if !(scheme == "https" || scheme == "http") || rest.is_empty() {
        return None;
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#', '@']) || rest.chars().any(char::is_whitespace) {
        return None;
    }
    Some(format!("{scheme}://{}", rest.to_ascii_lowercase()))
}

fn read_file_settings(path: Option<&PathBuf>) -> anyhow::Result<FileSettings> {
    match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("could not read config file {}", path.display()))?;
            toml::from_str::<FileSettings>(&text)
                .with_context(|| format!("config file {}", path.display()))
        }
        None => Ok(FileSettings::default()),
    }
}

/// The database settings alone, for commands that work on the database without
/// serving (`audit verify`, `migrate`, `copy`).
#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// TOML file with the server's settings (only the database ones are used here).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// sqlite://..., postgres://... or mysql://... [default: sqlite://tokenwarden.db].
    #[arg(long, env = "TOKENWARDEN_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// File holding the database URL (for URLs with a password).
    #[arg(long, env = "TOKENWARDEN_DATABASE_URL_FILE", value_name = "FILE")]
    pub database_url_file: Option<PathBuf>,
}

impl DatabaseArgs {
    pub fn resolve(self) -> anyhow::Result<String> {
        let file = read_file_settings(self.config.as_ref())?;
        Ok(secret(
            self.database_url.or(file.database_url),
            self.database_url_file.or(file.database_url_file),
            "TOKENWARDEN_DATABASE_URL",
        )?
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()))
    }
}

/// The operator directory's catalog entries, checked as the server will use them.
fn operator_providers(
    dir: Option<&Path>,
    allow_loopback: bool,
) -> anyhow::Result<Vec<tokenwarden_service::ProviderSpec>> {
    let Some(dir) = dir else {
        return Ok(Vec::new());
    };
    let policy = tokenwarden_oauth::HttpPolicy {
        allow_loopback,
        ..tokenwarden_oauth::HttpPolicy::default()
    };
    let entries =
        tokenwarden_oauth::load_catalog(Some(dir), &policy).map_err(|e| anyhow!("{e}"))?;
    Ok(entries
        .into_iter()
        .filter(|e| matches!(e.source, tokenwarden_oauth::CatalogSource::File(_)))
        .map(|e| e.definition.spec().clone())
        .collect())
}

impl ServeArgs {
    pub fn resolve(self) -> anyhow::Result<Settings> {
        let file = read_file_settings(self.config.as_ref())?;

        let listen_text = self
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            anyhow!(
                "TOKENWARDEN_LISTEN must be an address such as 127.0.0.1:8080, not {listen_text:?}"
            )
        })?;

        let database_url = secret(
            self.database_url.or(file.database_url),
            self.database_url_file.or(file.database_url_file),
            "TOKENWARDEN_DATABASE_URL",
        )?
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());

        let public_url = self
            .public_url
            .or(file.public_url)
            .unwrap_or_else(|| format!("http://{listen}"));
        let public_url = public_url.trim_end_matches('/').to_owned();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            bail!("TOKENWARDEN_PUBLIC_URL must start with http:// or https://");
        }

        let refresh_skew_secs = self
            .refresh_skew_seconds
            .or(file.refresh_skew_seconds)
            .unwrap_or(60);
        if refresh_skew_secs > 24 * 3600 {
            bail!("TOKENWARDEN_REFRESH_SKEW_SECONDS must be at most 86400");
        }

        let return_origins = match self
            .return_origins
            .map(OneOrMany::One)
            .or(file.return_origins)
        {
            Some(list) => origins(list)?,
            None => Vec::new(),
        };

        let master_key = secret(
            self.master_key.or(file.master_key),
            self.master_key_file.or(file.master_key_file),
            "TOKENWARDEN_MASTER_KEY",
        )?
        .map(|text| {
            MasterKey::parse(&text).map_err(|_| {
                anyhow!("TOKENWARDEN_MASTER_KEY must be 32 bytes as 64 hex digits or base64 (try: openssl rand -hex 32)")
            })
        })
        .transpose()?;

        let signup = match self
            .signup
            .or(file.signup)
            .unwrap_or_else(|| "open".to_owned())
            .as_str()
        {
            "open" => Signup::Open,
            "closed" => Signup::Closed,
            other => bail!("TOKENWARDEN_SIGNUP must be open or closed, not {other:?}"),
        };

        let allow_loopback_providers = match self.allow_loopback_providers {
            Some(v) => parse_bool("TOKENWARDEN_ALLOW_LOOPBACK_PROVIDERS", &v)?,
            None => file.allow_loopback_providers.unwrap_or(false),
        };

        let log = self.log.or(file.log).unwrap_or_else(|| "info".to_owned());

        let refresh_lease_secs = self
            .refresh_lease_seconds
            .or(file.refresh_lease_seconds)
            .unwrap_or(45);
        if !(1..=600).contains(&refresh_lease_secs) {
            bail!("TOKENWARDEN_REFRESH_LEASE_SECONDS must be between 1 and 600");
        }

        let connect_link_ttl_secs = self
            .connect_link_ttl_seconds
            .or(file.connect_link_ttl_seconds)
            .unwrap_or(1800);
        if !(60..=7 * 24 * 3600).contains(&connect_link_ttl_secs) {
            bail!("TOKENWARDEN_CONNECT_LINK_TTL_SECONDS must be between 60 and 604800");
        }

        let providers_dir = self.providers_dir.or(file.providers_dir);
        let extra_providers =
            operator_providers(providers_dir.as_deref(), allow_loopback_providers)?;
        let proxy = proxy_settings(
            self.proxy_max_body_bytes.or(file.proxy_max_body_bytes),
            self.proxy_connect_timeout_seconds
                .or(file.proxy_connect_timeout_seconds),
            self.proxy_timeout_seconds.or(file.proxy_timeout_seconds),
        )?;

        let lifecycle = lifecycle_settings(
            match self.background {
                Some(v) => Some(parse_bool("TOKENWARDEN_BACKGROUND", &v)?),
                None => file.background,
            },
            self.expiring_notice_seconds
                .or(file.expiring_notice_seconds),
            self.lifecycle_tick_ms.or(file.lifecycle_tick_ms),
            self.lifecycle_claim_seconds
                .or(file.lifecycle_claim_seconds),
        )?;
        let server_key_file = self
            .server_key_file
            .or(file.server_key_file)
            .unwrap_or_else(|| default_server_key_file(self.config.as_deref(), &database_url));

        Ok(Settings {
            database_url,
            server: ServerConfig {
                listen,
                public_url,
                refresh_skew_secs,
                return_origins,
                master_key,
                signup,
                allow_loopback_providers,
                refresh_lease_secs,
                connect_link_ttl_secs,
                extra_providers,
                extra_routes: None,
                proxy,
                lifecycle,
                server_key_file: Some(server_key_file),
            },
            log,
        })
    }
}

/// The background settings; each bounded so a typo cannot stall or spin the workers.
fn lifecycle_settings(
    background: Option<bool>,
    expiring_notice: Option<u64>,
    tick_ms: Option<u64>,
    claim_secs: Option<u64>,
) -> anyhow::Result<tokenwarden_service::LifecycleSettings> {
    let mut s = tokenwarden_service::LifecycleSettings {
        background: background.unwrap_or(true),
        ..Default::default()
    };
    if let Some(n) = expiring_notice {
        if !(60..=90 * 24 * 3600).contains(&n) {
            bail!("TOKENWARDEN_EXPIRING_NOTICE_SECONDS must be between 60 and 7776000 (90 days)");
        }
        s.expiring_notice_secs = n;
    }
    if let Some(n) = tick_ms {
        if !(10..=60_000).contains(&n) {
            bail!("TOKENWARDEN_LIFECYCLE_TICK_MS must be between 10 and 60000");
        }
        s.tick_ms = n;
    }
    if let Some(n) = claim_secs {
        if !(1..=3600).contains(&n) {
            bail!("TOKENWARDEN_LIFECYCLE_CLAIM_SECONDS must be between 1 and 3600");
        }
        s.claim_secs = n;
    }
    Ok(s)
}

/// `tokenwarden-server.key` beside the configuration: the --config file's directory,
/// else a SQLite database file's, else the working directory.
fn default_server_key_file(config: Option<&Path>, database_url: &str) -> PathBuf {
    const NAME: &str = "tokenwarden-server.key";
    if let Some(dir) = config.and_then(Path::parent) {
        return dir.join(NAME);
    }
    if let Some(path) = database_url.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or(path);
        if let Some(dir) = Path::new(path).parent()
            && path != ":memory:"
        {
            return dir.join(NAME);
        }
    }
    PathBuf::from(NAME)
}

/// The proxy's limits; each must be positive, and the total time must allow the
/// connect time.
fn proxy_settings(
    max_body_bytes: Option<u64>,
    connect_timeout: Option<u64>,
    timeout: Option<u64>,
) -> anyhow::Result<ProxySettings> {
    let defaults = ProxySettings::default();
    let max_body_bytes = max_body_bytes.unwrap_or(defaults.max_body_bytes);
    if max_body_bytes == 0 {
        bail!("TOKENWARDEN_PROXY_MAX_BODY_BYTES must be at least 1");
    }
    let connect_timeout = connect_timeout.map_or(defaults.connect_timeout, Duration::from_secs);
    let timeout = timeout.map_or(defaults.timeout, Duration::from_secs);
    if connect_timeout.is_zero() || timeout < connect_timeout {
        bail!(
            "TOKENWARDEN_PROXY_CONNECT_TIMEOUT_SECONDS must be at least 1 and at most TOKENWARDEN_PROXY_TIMEOUT_SECONDS"
        );
    }
    Ok(ProxySettings {
        max_body_bytes,
        connect_timeout,
        timeout,
        ..defaults
    })
}

#[cfg(test)]
mod tests;
