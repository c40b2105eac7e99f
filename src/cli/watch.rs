//! `seclab watch`: continuous mode until SIGINT or SIGTERM.

use std::net::SocketAddr;

use tokio_util::sync::CancellationToken;

use seclab::config::LoadError;
use seclab::watch::{self, Settings, WatchError};

use super::{Failure, Secrets, load_with_secrets};
use crate::Cli;

/// `seclab watch`.
pub fn watch(cli: &Cli, listen: Option<SocketAddr>) -> Result<(), Failure> {
    let lab = load_with_secrets(cli, Secrets::All)?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(Failure::of)?;
    let settings = Settings {
        file: cli.file.clone(),
        templates: cli.templates.clone(),
        kubeconfig: cli.kubeconfig.clone(),
        context: cli.context.clone(),
        listen,
    };
    runtime.block_on(async {
        let stop = CancellationToken::new();
        tokio::spawn(stop_on_signal(stop.clone()));
        let name = lab.name().to_owned();
        let started = |address: SocketAddr| {
            eprintln!("watching lab {name} ({}): endpoints on http://{address}; stop with Ctrl-C", cli.file.display());
        };
        watch::run(settings, stop, started).await.map_err(|error| match error {
            WatchError::Load(LoadError::Invalid(file)) => Failure::invalid(&file),
            other => Failure::of(other),
        })
    })
}

/// Cancels `stop` on SIGINT or SIGTERM.
async fn stop_on_signal(stop: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        return;
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("stopping: finishing or abandoning the current step");
    stop.cancel();
}
