//! `tokenwarden serve`.

use anyhow::Context;
use tokenwarden_server::App;
use tokio::net::TcpListener;
use tracing::info;
use tracing_subscriber::EnvFilter;

use crate::config::ServeArgs;

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let settings = args.resolve()?;
    let filter = EnvFilter::try_new(&settings.log)
        .with_context(|| format!("TOKENWARDEN_LOG: invalid filter {:?}", settings.log))?;
    tracing_subscriber::fmt().with_env_filter(filter).init();

    let listen = settings.server.listen;
    let public_url = settings.server.public_url.clone();
    let app = App::build(settings.server).await?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("could not listen on {listen}"))?;
    info!(%listen, %public_url, version = env!("CARGO_PKG_VERSION"), "tokenwarden started");
    app.serve(listener, shutdown_signal())
        .await
        .context("server failed")?;
    info!("tokenwarden stopped");
    Ok(())
}

async fn shutdown_signal() {
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
