//! The `herald` binary: parse the configuration, build the application, run it until
//! SIGTERM or SIGINT, and report a failure with its cause chain.

use std::process::ExitCode;

use anyhow::Context;
use herald::app::Application;
use herald::config::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let outcome = match Cli::parse_or_exit().into_command() {
        Command::Serve(args) => {
            match herald::telemetry::init(args.log_format, args.tracing().as_ref()) {
                Ok(telemetry) => {
                    let outcome = run(args).await;
                    telemetry.shutdown();
                    outcome
                }
                Err(e) => Err(e.into()),
            }
        }
        Command::Watch(args) => herald::cli::watch(args).await.map_err(anyhow::Error::from),
        Command::Stats(args) => herald::cli::stats(args).await.map_err(anyhow::Error::from),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: herald::config::ServeArgs) -> anyhow::Result<()> {
    let config = args.into_config()?;
    let app = Application::build(config)
        .await
        .context("cannot start herald")?;
    app.run_until(shutdown_signal())
        .await
        .context("herald failed")
}

/// Resolves on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
