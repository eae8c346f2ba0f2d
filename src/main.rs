//! The `sessionrange` command line: a thin shell over the library.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use sessionrange::geo;

/// A test range for stateful HTTP clients.
#[derive(Debug, Parser)]
#[command(name = "sessionrange", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with the geo fixture databases.
    #[command(subcommand)]
    Geo(GeoCommand),
}

#[derive(Debug, Subcommand)]
enum GeoCommand {
    /// Rebuild the fixture .mmdb files from their TOML source.
    Build {
        /// The fixture source.
        #[arg(long, default_value = geo::FIXTURE_SOURCE)]
        source: PathBuf,
        /// The directory to write asn.mmdb and city.mmdb into.
        #[arg(long, default_value = geo::FIXTURE_DIR)]
        out: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Geo(GeoCommand::Build { source, out }) => {
            for path in geo::build_fixtures(&source, &out)? {
                println!("wrote {}", path.display());
            }
        }
    }
    Ok(())
}
