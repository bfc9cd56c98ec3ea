use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use idverify::cli::{self, Cli};
use idverify::config::Config;

/// How long exit waits for blocking work still running (an engine call of a request cut at the
/// shutdown grace bound). Dropping the runtime would wait for every such call to return, so
/// `idverify serve` would outlive `shutdown_grace_secs` by the slowest engine call.
const EXIT_WAIT: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    idverify::allocator::cap_malloc_arenas();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("idverify: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run());
    runtime.shutdown_timeout(EXIT_WAIT);
    code
}

async fn run() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli::overrides(&cli.global)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("idverify: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    idverify::telemetry::init_logging(&config.log_level);
    match cli::run(cli, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("idverify: {e:#}");
            ExitCode::FAILURE
        }
    }
}
