//! `tokenwarden serve`.

use anyhow::Context;
use tokenwarden_server::App;
use tokio::net::TcpListener;
use tracing::info;
use tracing_subscriber::EnvFilter;

use crate::config::ServeArgs;
#[cfg(feature = "dev-provider")]
use crate::dev;

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let dev_mode = args.dev;
    #[cfg(not(feature = "dev-provider"))]
    if dev_mode {
        anyhow::bail!(
            "--dev needs the demo provider, which this build left out (cargo feature dev-provider)"
        );
    }
    let mut args = args;
    // --dev: a throwaway database that lives as long as the process.
    let dev_dir = if dev_mode {
        let dir = tempfile::tempdir().context("creating the --dev temporary directory")?;
        args.database_url = Some(format!("sqlite://{}", dir.path().join("dev.db").display()));
        args.database_url_file = None;
        args.allow_loopback_providers = Some("true".into());
        Some(dir)
    } else {
        None
    };
    let mut settings = args.resolve()?;
    let filter = EnvFilter::try_new(&settings.log)
        .with_context(|| format!("TOKENWARDEN_LOG: invalid filter {:?}", settings.log))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    #[cfg(feature = "dev-provider")]
    let demo_secret = if dev_mode {
        Some(dev::configure(&mut settings.server)?)
    } else {
        None
    };
    let listen = settings.server.listen;
    let public_url = settings.server.public_url.clone();
    let store = tokenwarden_store_select::open_store(&settings.database_url).await?;
    let app = App::build(settings.server, store).await?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("could not listen on {listen}"))?;
    info!(%listen, %public_url, version = env!("CARGO_PKG_VERSION"), "tokenwarden started");
    #[cfg(feature = "dev-provider")]
    if let Some(secret) = demo_secret {
        let boot = dev::bootstrap(&app, &public_url, secret).await?;
        #[expect(
            clippy::print_stdout,
            reason = "--dev prints its key and walk-through for a person"
        )]
        {
            println!("{}", boot.banner());
        }
    }
    app.serve(listener, shutdown_signal())
        .await
        .context("server failed")?;
    drop(dev_dir);
    info!("tokenwarden stopped");
    Ok(())
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
