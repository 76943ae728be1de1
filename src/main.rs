//! The `herald` binary: parse the command line (`serve`, the default, one of the
//! terminal views, or the `health` probe), raise the open-file limit, build the
//! application, run it until SIGTERM or SIGINT, and report a failure with its cause
//! chain. The exit status is 0 after a graceful stop, [`EXIT_STORE_FAILED`] (74) when the
//! store failed for good and Herald should be restarted, 1 on any other failure
//! (configuration, startup, serving).

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use herald::app::{AppError, Application, EXIT_STORE_FAILED};
use herald::cli::{HealthArgs, StatsArgs, WatchArgs};
use herald::config::ServeArgs;

#[derive(Debug, Parser)]
#[command(
    name = "herald",
    version,
    about = "Webhook delivery service with a gRPC API",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Settings of `serve`, the default command.
    #[command(flatten)]
    serve: ServeArgs,
}

// One command value exists per process; boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gRPC server and the delivery workers (the default).
    Serve(ServeArgs),
    /// Follow deliveries live from a running server.
    Watch(WatchArgs),
    /// Print delivery analytics of a running server.
    Stats(StatsArgs),
    /// Ask a running server's admin port whether it is ready: exit 0 when it is, 1 when
    /// it is not or cannot be reached (a container health check).
    Health(HealthArgs),
}

impl Cli {
    /// Parses the command line and environment; on an invalid value, exits naming both
    /// the flag and its environment variable (the value may have come from either).
    fn parse_or_exit() -> Self {
        Self::try_parse().unwrap_or_else(|e| {
            if let Some(env) = Self::env_of_invalid_arg(&e) {
                let _ = e.print();
                eprintln!("(setting {env}: set by that environment variable or by the flag)");
                std::process::exit(e.exit_code());
            }
            e.exit()
        })
    }

    /// The environment variable of the argument an error is about, if it has one.
    fn env_of_invalid_arg(e: &clap::Error) -> Option<String> {
        let clap::error::ContextValue::String(arg) = e.get(clap::error::ContextKind::InvalidArg)?
        else {
            return None;
        };
        let long = arg.split_whitespace().next()?.strip_prefix("--")?;
        let command = <Self as clap::CommandFactory>::command();
        let found = command
            .get_arguments()
            .find(|a| a.get_long() == Some(long))?;
        found
            .get_env()
            .map(|env| env.to_string_lossy().into_owned())
    }

    /// The command to run: `serve` when none is named.
    fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
    }
}

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
        Command::Health(args) => herald::cli::health(args).await.map_err(anyhow::Error::from),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            match e.downcast_ref::<AppError>() {
                Some(AppError::StoreFailed(_)) => ExitCode::from(EXIT_STORE_FAILED),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.into_config()?;
    let shutdown = shutdown_signal()?;
    raise_open_file_limit();
    let app = Application::build(config)
        .await
        .context("cannot start herald")?;
    app.run_until(shutdown).await.context("herald failed")
}

/// Raises the soft open-file limit to the hard one, for the process as a whole (the
/// application shares out whatever limit it finds), and says what it is now.
fn raise_open_file_limit() {
    match herald::connections::raise_open_file_limit() {
        Ok(limit) if limit.now > limit.before => tracing::info!(
            before = limit.before,
            now = limit.now,
            "open-file limit raised to the hard limit"
        ),
        Ok(limit) => tracing::info!(now = limit.now, hard = limit.hard, "open-file limit"),
        Err(e) => tracing::warn!(
            error = %e,
            "cannot raise the open-file limit; connections are capped to what it allows"
        ),
    }
}

/// Resolves on the first SIGTERM or SIGINT. The handlers are installed now, before
/// anything is served: a signal sent as soon as Herald says it serves stops it
/// gracefully instead of killing it.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}
