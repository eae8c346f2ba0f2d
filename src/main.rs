//! The `sessionrange` command line: a thin shell over the library.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use sessionrange::{EngineConfig, GeoDb, geo, trace};

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
    /// Print the default rules as TOML, ready to edit.
    Rules,
    /// Replay a decision trace against a rule set and show what changes.
    Replay {
        /// The JSON Lines trace.
        trace: PathBuf,
        /// Rules to replay with (TOML); the defaults when left out.
        #[arg(long)]
        rules: Option<PathBuf>,
    },
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
    /// Show what sessionrange knows about addresses, as JSON lines.
    Lookup {
        /// The addresses.
        #[arg(required = true)]
        ips: Vec<IpAddr>,
        /// A GeoLite2-ASN style database instead of the embedded fixtures.
        #[arg(long)]
        asn_db: Option<PathBuf>,
        /// A GeoLite2-City or -Country style database.
        #[arg(long)]
        city_db: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Geo(GeoCommand::Build { source, out }) => {
            for path in geo::build_fixtures(&source, &out)? {
                println!("wrote {}", path.display());
            }
        }
        Command::Geo(GeoCommand::Lookup {
            ips,
            asn_db,
            city_db,
        }) => {
            let geo = match (asn_db, city_db) {
                (None, None) => GeoDb::embedded(),
                (asn, city) => GeoDb::open(asn.as_deref(), city.as_deref())?,
            };
            for ip in ips {
                let info = serde_json::to_string(&geo.lookup(ip))?;
                println!("{{\"ip\":\"{ip}\",\"network\":{info}}}");
            }
        }
        Command::Rules => print!("{}", toml::to_string_pretty(&EngineConfig::default())?),
        Command::Replay { trace, rules } => replay(&trace, rules.as_deref())?,
    }
    Ok(())
}

fn replay(path: &Path, rules: Option<&Path>) -> anyhow::Result<()> {
    let config = match rules {
        None => EngineConfig::default(),
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            toml::from_str(&text).with_context(|| format!("{}", p.display()))?
        }
    };
    let decisions = trace::read_trace(path)?;
    let diffs = sessionrange::replay(config, &decisions)?;
    for (was, now) in &diffs {
        println!(
            "seq {} session {}: recorded {} -> replayed {}",
            was.seq, was.session, was.verdict, now.verdict
        );
    }
    println!(
        "{} decisions replayed, {} differ",
        decisions.len(),
        diffs.len()
    );
    Ok(())
}
