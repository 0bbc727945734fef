use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = passmint::cli::Cli::parse();
    match passmint::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, naming what is wrong.
            eprintln!("passmint: {e:#}");
            ExitCode::FAILURE
        }
    }
}
