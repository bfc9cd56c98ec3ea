use clap::Parser;
use idverify::cli::{self, Cli};
use idverify::config::Config;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli::overrides(&cli.global)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("idverify: configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    idverify::telemetry::init_logging(&config.log_level);
    match cli::run(cli, config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("idverify: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
