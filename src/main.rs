//! The `sessionrange` command line: a thin shell over the library.

use clap::{Parser, Subcommand};

/// A test range for stateful HTTP clients.
#[derive(Debug, Parser)]
#[command(name = "sessionrange", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {}
}
