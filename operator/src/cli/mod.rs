//! The `apisix-operator` command line.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "apisix-operator", version = crate::VERSION, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the version and the versions of the APIs it speaks.
    Version,
}

/// Parses the command line and runs the chosen subcommand.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("apisix-operator {}", crate::VERSION);
            std::process::ExitCode::SUCCESS
        }
    }
}
