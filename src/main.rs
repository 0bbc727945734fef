use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = passfold::cli::Cli::parse();
    match passfold::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, naming what is wrong.
            eprintln!("passfold: {e:#}");
            ExitCode::FAILURE
        }
    }
}
