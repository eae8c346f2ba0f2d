//! The `sessionrange` command line: a thin shell over the library.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use sessionrange::fuzz::run::{FuzzOptions, FuzzReport};
use sessionrange::fuzz::search::Budget;
use sessionrange::pool::ProxyPool;
use sessionrange::report;
use sessionrange::runner::{self, RunOptions, RunReport, Status};
use sessionrange::scenario::Scenario;
use sessionrange::site::{self, TargetState, TraceLog};
use sessionrange::{Clock, EngineConfig, GeoDb, Range, geo, trace};

/// A test range for stateful HTTP clients.
#[derive(Debug, Parser)]
#[command(name = "sessionrange", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `serve`'s options.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// A scenario file; the embedded baseline when left out.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// The public listener (loopback only).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// The admin listener (loopback only; a free port by default).
    #[arg(long, default_value = "127.0.0.1:0")]
    admin_addr: SocketAddr,
    /// Where to append the decision trace; `runs/<time>/trace.jsonl` by default.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// The trace file's size limit (`256M`, `1G`; 0 for none): past it
    /// the file is renamed `<trace>.1` and a new one started; three old
    /// files are kept.
    #[arg(long, default_value = "256M", value_parser = site::trace_file::parse_size)]
    trace_max: u64,
    /// The dataset salt; a fresh random one when left out, so the
    /// records differ from every other run's. On a shared store the first
    /// instance's salt is everyone's.
    #[arg(long)]
    seed: Option<u64>,
    /// Keep sessions, tokens and keys in this Redis (`redis://HOST:PORT/DB`)
    /// instead of the process, so that several instances share them and a
    /// restart keeps them; overrides the scenario's `[target] store`.
    #[arg(long)]
    store: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with the geo fixture databases.
    #[command(subcommand)]
    Geo(GeoCommand),
    /// Run the mock target until Ctrl-C.
    Serve(ServeArgs),
    /// Grade a client on scenarios: start the target and the pool, run the
    /// client, print the report card. Exit codes follow pytest: 0 all
    /// passed, 1 some criteria failed, 2 interrupted, 3 internal error,
    /// 4 usage or scenario error, 5 nothing ran.
    Run {
        /// Scenario files or directories of them; the bundled pack when none.
        scenarios: Vec<PathBuf>,
        /// Write the report as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write JUnit XML here (scenario = testsuite, criterion = testcase).
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Write a Markdown summary here, such as "$GITHUB_STEP_SUMMARY".
        #[arg(long)]
        summary: Option<PathBuf>,
        /// Write a self-contained HTML report here: each scenario's card,
        /// a timeline of its sessions, how each died, its missing records.
        #[arg(long)]
        html: Option<PathBuf>,
        /// Print a one-time link to each scenario's live dashboard as it
        /// starts (it works while that scenario runs).
        #[arg(long)]
        dashboard: bool,
        /// Where each run's directory goes.
        #[arg(long, default_value = "runs")]
        out: PathBuf,
        /// No live status line.
        #[arg(long)]
        quiet: bool,
        /// The dataset salt, to serve the same records as an earlier run
        /// (its report's `seed`); a fresh random one per scenario otherwise.
        #[arg(long)]
        seed: Option<u64>,
        /// The client command, after `--`; the built-in reference client when left out.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Fuzz a client: draw scenario variants around a base scenario (exit
    /// deaths, a moving gateway, revocations, rate limits, companion
    /// cookies, short lifetimes and tokens, HTTPS), run the client on each,
    /// and shrink the first failure to a scenario file that `run` replays.
    /// Exit codes: 0 no failure, 1 a failure that reproduced, 6 one that
    /// did not, 3 internal error, 4 usage or scenario error.
    Fuzz(FuzzArgs),
    /// The built-in reference client: reads the `SESSIONRANGE_*` environment
    /// that `run` sets, crawls the target and writes its records.
    Client(sessionrange::client::ClientArgs),
    /// Compute JA3/JA4 from a TLS ClientHello, or JA4H from an HTTP/1
    /// request head: raw bytes in a file, or hex on the command line.
    Fingerprint {
        /// Hex bytes, or the path of a file of raw bytes.
        input: String,
    },
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

/// `sessionrange fuzz` options.
#[derive(Debug, clap::Args)]
struct FuzzArgs {
    /// The base scenario: a file, or a bundled scenario's name.
    #[arg(default_value = "baseline")]
    scenario: String,
    /// Variants to draw before giving up, shrinking aside.
    #[arg(long, default_value_t = 30)]
    runs: u32,
    /// The seed of the draws; a random one, printed, when left out.
    #[arg(long)]
    seed: Option<u64>,
    /// Stop drawing and shrinking after this long, such as `10m`.
    #[arg(long, value_parser = humantime::parse_duration)]
    time_budget: Option<std::time::Duration>,
    /// Variants run at once.
    #[arg(long, default_value_t = 2)]
    parallel: usize,
    /// Runs spent shrinking a failure, at most.
    #[arg(long, default_value_t = 24)]
    shrink_runs: u32,
    /// Re-runs of the minimal variant, to tell a steady failure from a flaky one.
    #[arg(long, default_value_t = 3)]
    confirm: u32,
    /// Where the runs, `minimal.toml` and `fuzz.json` go (in a folder per session).
    #[arg(long, default_value = "runs")]
    out: PathBuf,
    /// Write the fuzz report as JSON here too.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write JUnit XML of the minimal variant's run here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// No live status line.
    #[arg(long)]
    quiet: bool,
    /// The client command, after `--`; the built-in reference client when left out.
    #[arg(last = true)]
    command: Vec<String>,
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
        Command::Serve(args) => serve(&args)?,
        Command::Run {
            scenarios,
            json,
            junit,
            summary,
            html,
            dashboard,
            out,
            quiet,
            seed,
            command,
        } => {
            let outputs = Outputs {
                json,
                junit,
                summary,
                html,
                dashboard,
                quiet,
                seed,
            };
            std::process::exit(run(&scenarios, out, command, &outputs));
        }
        Command::Fuzz(args) => std::process::exit(fuzz(args)),
        Command::Client(args) => {
            let env = sessionrange::client::ClientEnv::from_env()?;
            let runtime = tokio::runtime::Runtime::new()?;
            let summary = runtime.block_on(sessionrange::client::run(env, args))?;
            eprintln!("{}", serde_json::to_string(&summary)?);
        }
        Command::Fingerprint { input } => fingerprint(&input)?,
        Command::Rules => print!("{}", toml::to_string_pretty(&EngineConfig::default())?),
        Command::Replay { trace, rules } => replay(&trace, rules.as_deref())?,
    }
    Ok(())
}

/// `sessionrange fingerprint`: hex (when it decodes) or a file's bytes.
fn fingerprint(input: &str) -> anyhow::Result<()> {
    let bytes = match sessionrange::fingerprint::decode_hex(input) {
        Some(b) if !b.is_empty() => b,
        _ => std::fs::read(input)
            .with_context(|| format!("{input} is neither hex nor a readable file"))?,
    };
    let found = sessionrange::fingerprint::fingerprint(&bytes)?;
    println!("{}", serde_json::to_string_pretty(&found)?);
    Ok(())
}

/// Where `run` writes its reports besides the terminal.
struct Outputs {
    json: Option<PathBuf>,
    junit: Option<PathBuf>,
    summary: Option<PathBuf>,
    html: Option<PathBuf>,
    /// Print each scenario's dashboard link.
    dashboard: bool,
    /// No live status line.
    quiet: bool,
    /// The dataset salt, when a run is reproduced.
    seed: Option<u64>,
}

/// `sessionrange run`; returns the exit code.
fn run(paths: &[PathBuf], out: PathBuf, command: Vec<String>, outputs: &Outputs) -> i32 {
    let scenarios = match runner::select::load(paths) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sessionrange: {e}");
            return 4;
        }
    };
    if scenarios.is_empty() {
        eprintln!("sessionrange: no scenarios to run");
        return 5;
    }
    let Some(command) = client_command(command) else {
        return 3;
    };
    let stamp = Clock::system().now().as_millis();
    let opts = RunOptions {
        command,
        out_dir: out.join(format!("run-{stamp}")),
        status: if outputs.quiet {
            Status::Off
        } else {
            Status::auto()
        },
        seed: outputs.seed,
        sole_parent: true,
        dashboard: outputs.dashboard,
    };
    let Ok(runtime) = tokio::runtime::Runtime::new() else {
        eprintln!("sessionrange: cannot start the async runtime");
        return 3;
    };
    let stop = stop_flag(&runtime);
    let (report, error) = runtime.block_on(runner::run_all(&scenarios, &opts, stop));
    // A run that stopped before its first scenario on an error of the
    // user's has no card to show: "0 of 0 scenarios passed" says nothing.
    let usage = matches!(error, Some(sessionrange::Error::Config { .. }));
    if !(usage && report.scenarios.is_empty()) {
        print!("{}", report::card(&report));
    }
    let written = write_reports(&report, &scenarios, outputs);
    match (error, written) {
        (Some(e @ sessionrange::Error::Config { .. }), _) => {
            eprintln!("sessionrange: {e}");
            4
        }
        (Some(e), _) | (None, Err(e)) => {
            eprintln!("sessionrange: {e}");
            3
        }
        (None, Ok(())) => report.exit_code(),
    }
}

/// `sessionrange fuzz`; returns the exit code.
fn fuzz(args: FuzzArgs) -> i32 {
    let base = match fuzz_base(&args.scenario) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sessionrange: {e}");
            return 4;
        }
    };
    let Some(command) = client_command(args.command) else {
        return 3;
    };
    let seed = args.seed.unwrap_or_else(rand::random);
    eprintln!("sessionrange fuzz: seed {seed} (draw the same variants again with --seed {seed})");
    let opts = FuzzOptions {
        base,
        command,
        out_dir: args.out.join(format!("fuzz-{seed}")),
        seed,
        budget: Budget {
            runs: args.runs,
            batch: args.parallel.max(1),
            shrink_steps: args.shrink_runs,
            time: args.time_budget,
        },
        confirm: args.confirm,
        status: if args.quiet {
            Status::Off
        } else {
            Status::auto()
        },
    };
    let Ok(runtime) = tokio::runtime::Runtime::new() else {
        eprintln!("sessionrange: cannot start the async runtime");
        return 3;
    };
    let rx = stop_flag(&runtime);
    let report = match sessionrange::fuzz::run::fuzz(&opts, &runtime, &rx) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sessionrange: {e}");
            return if matches!(e, sessionrange::Error::Config { .. }) {
                4
            } else {
                3
            };
        }
    };
    print!("{}", report.card());
    if let Err(e) = write_fuzz_reports(&report, args.json, args.junit) {
        eprintln!("sessionrange: {e}");
        return 3;
    }
    report.exit_code()
}

/// Writes the fuzz report as JSON, and the minimal run as JUnit XML.
fn write_fuzz_reports(
    report: &FuzzReport,
    json: Option<PathBuf>,
    junit: Option<PathBuf>,
) -> sessionrange::Result<()> {
    let outputs = Outputs {
        json: None,
        junit,
        summary: None,
        html: None,
        dashboard: false,
        quiet: true,
        seed: None,
    };
    write_reports(&report.run_report(), &[], &outputs)?;
    json.map_or(Ok(()), |p| report.write_json(&p))
}

/// The base scenario of `fuzz`: a file when one is there, else a bundled name.
fn fuzz_base(name: &str) -> sessionrange::Result<Scenario> {
    let path = Path::new(name);
    if path.exists() {
        return Scenario::load(path);
    }
    Scenario::named(name)
}

/// A flag that turns true on Ctrl-C, SIGTERM or SIGHUP, caught from now on.
fn stop_flag(runtime: &tokio::runtime::Runtime) -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let _inside = runtime.enter();
    let stop = stop_signal();
    runtime.spawn(async move {
        stop.await;
        let _ = tx.send(true);
    });
    rx
}

/// Waits for Ctrl-C, SIGTERM (what `timeout`, CI cancellation and `docker
/// stop` send) or SIGHUP: each stops a run the same way, with every report
/// written. The signals are caught from the call on, before the future is
/// first polled: a signal sent as soon as `serve` printed its banner still
/// stops it cleanly. Call it inside the runtime.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let int = signal(SignalKind::interrupt());
    let term = signal(SignalKind::terminate());
    let hup = signal(SignalKind::hangup());
    async move {
        let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (int, term, hup) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
    }
}

/// The client to run: `command`, or the built-in reference client.
fn client_command(command: Vec<String>) -> Option<Vec<String>> {
    if !command.is_empty() {
        return Some(command);
    }
    match std::env::current_exe() {
        Ok(exe) => Some(vec![
            exe.to_string_lossy().into_owned(),
            "client".to_owned(),
        ]),
        Err(e) => {
            eprintln!("sessionrange: cannot find the reference client: {e}");
            None
        }
    }
}

fn write_reports(
    report: &RunReport,
    scenarios: &[Scenario],
    outputs: &Outputs,
) -> sessionrange::Result<()> {
    let write = |path: &Option<PathBuf>, text: String| match path {
        Some(p) => std::fs::write(p, text).map_err(|e| sessionrange::Error::io(p, e)),
        None => Ok(()),
    };
    write(
        &outputs.json,
        serde_json::to_string_pretty(report).unwrap_or_default(),
    )?;
    write(&outputs.junit, report::junit(report))?;
    write(&outputs.summary, report::markdown(report))?;
    if outputs.html.is_some() {
        write(&outputs.html, report::html(report, scenarios))?;
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
    let entries = trace::read_entries(path)?;
    let decisions = entries
        .iter()
        .filter(|e| matches!(e, sessionrange::engine::Entry::Decision(_)))
        .count();
    let diffs = sessionrange::engine::replay_entries(config, &entries)?;
    for (was, now) in &diffs {
        println!(
            "seq {} session {}: recorded {} -> replayed {}",
            was.seq, was.session, was.verdict, now.verdict
        );
    }
    println!("{decisions} decisions replayed, {} differ", diffs.len());
    Ok(())
}

fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let (addr, admin_addr) = (args.addr, args.admin_addr);
    // Refuse a non-loopback address before creating the trace file.
    site::check_loopback(addr)?;
    site::check_loopback(admin_addr)?;
    let mut scenario = match &args.scenario {
        Some(p) => Scenario::load(p)?,
        None => Scenario::embedded()?,
    };
    if let Some(url) = &args.store {
        scenario.target.store = Some(url.clone());
        scenario.target.validate("target")?;
    }
    let clock = Clock::system();
    let (trace_path, log) = open_trace((args.trace.clone(), args.trace_max), &clock)?;
    if let Err(e) = site::raise_descriptor_limit() {
        eprintln!("sessionrange: cannot raise the descriptor limit: {e}");
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let range = Range::builder(&scenario)
            .clock(clock)
            .trace(log)
            .seed(args.seed.unwrap_or_else(rand::random))
            .bind(addr, admin_addr)
            .start()
            .await?;
        let ca = trace_path.with_file_name("ca.pem");
        range.state().tls.write_ca(&ca)?;
        let stop = stop_signal();
        let mut banner = String::new();
        print_range(&mut banner, &scenario, &range, &trace_path, &ca);
        emit(&banner);
        let state = range.state().clone();
        range.run_until(stop).await?;
        emit(&format!(
            "\nstopped. {}\ntrace: {}\n{}\n",
            state.metrics.summary(),
            trace_path.display(),
            state.trace.dropped().sentence()
        ));
        anyhow::Ok(())
    })
}

/// Writes `text` to stdout, ignoring a closed one: a target whose
/// banner nobody reads keeps serving.
fn emit(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Everything `serve` prints at start: URLs, accounts, curl commands,
/// the seed, the CA and the pool.
fn print_range(out: &mut String, scenario: &Scenario, range: &Range, trace: &Path, ca: &Path) {
    let state = range.state();
    let addrs = range.addrs();
    let proxy = range.pool().urls().first().map(|p| p.url.clone());
    print_banner(
        out,
        scenario,
        state,
        (addrs.public, addrs.admin),
        trace,
        proxy.as_deref(),
    );
    let _ = writeln!(
        out,
        "  data:   salted with seed {} (serve --seed {0} serves the same records)",
        state.config.dataset.salt
    );
    let _ = writeln!(
        out,
        "  https:  https://{}/  (trust {}: curl --cacert {1})",
        addrs.https,
        ca.display()
    );
    print_pool(out, range.pool(), addrs.public);
}

/// The trace `serve` writes: `path` or `runs/<time>/trace.jsonl`, cut at
/// `max` bytes (none when 0).
fn open_trace(
    (path, max): (Option<PathBuf>, u64),
    clock: &Clock,
) -> anyhow::Result<(PathBuf, TraceLog)> {
    let path = path
        .unwrap_or_else(|| PathBuf::from(format!("runs/{}/trace.jsonl", clock.now().as_secs())));
    let limit = (max > 0).then(|| site::TraceLimit {
        max_bytes: max,
        ..site::TraceLimit::default()
    });
    let log = TraceLog::open_limited(&path, limit)?;
    Ok((path, log))
}

fn print_pool(out: &mut String, pool: &ProxyPool, public: SocketAddr) {
    if pool.urls().is_empty() {
        return;
    }
    let _ = writeln!(out, "proxies (exit identity from the geo fixtures):");
    for p in pool.exits() {
        let exit = p.exit.as_ref().map(ToString::to_string).unwrap_or_default();
        let _ = writeln!(out, "  {:<10} {}  exit {exit}", p.name, p.url);
    }
    if let Some(g) = pool.gateway() {
        let _ = writeln!(out, "  {:<10} {}  a new exit per connection", g.name, g.url);
        if let Some(sticky) = pool.sticky_url("1") {
            let _ = writeln!(out, "  sticky:    {sticky}");
        }
    }
    if let Some(p) = pool.urls().first() {
        let _ = writeln!(
            out,
            "  curl -x '{}' http://{public}/__range/fingerprint",
            p.url
        );
    }
}

/// The banner: URLs, accounts, and curl commands to copy, through the
/// first proxy when the scenario has a pool (`proxy`).
fn print_banner(
    out: &mut String,
    scenario: &Scenario,
    state: &TargetState,
    (public, admin): (SocketAddr, SocketAddr),
    trace: &Path,
    proxy: Option<&str>,
) {
    let base = format!("http://{public}");
    let _ = writeln!(out, "sessionrange target, scenario `{}`", scenario.name);
    let _ = writeln!(out, "  site:   {base}/");
    let _ = writeln!(
        out,
        "  admin:  http://{admin}/sessions  (Authorization: Bearer {})",
        state.admin_token
    );
    let _ = writeln!(
        out,
        "  dashboard: http://{admin}/dashboard/login?token={}  (a link that works once, in a browser)",
        state.dashboard.issue_link()
    );
    let _ = writeln!(out, "  trace:  {}", trace.display());
    if let Some(store) = &state.shared {
        let _ = writeln!(
            out,
            "  store:  {} (shared: sessions outlive this process)",
            store.url()
        );
    }
    if state.config.refuses_direct() {
        let _ = writeln!(
            out,
            "direct access is refused (403 DIRECT_ACCESS): send every request through one of \
             the proxies printed below (only /__range/fingerprint answers directly)"
        );
    }
    let _ = writeln!(out, "accounts:");
    for a in &state.config.accounts {
        let _ = writeln!(out, "  {} / {}", a.username, a.password);
    }
    let (user, pass) = state
        .config
        .accounts
        .first()
        .map_or(("alice", "wonderland"), |a| {
            (a.username.as_str(), a.password.as_str())
        });
    let curl = match proxy.filter(|_| state.config.refuses_direct()) {
        Some(p) => format!("curl -x '{p}'"),
        None => "curl".to_owned(),
    };
    print_curl(out, &base, &curl, user, pass);
}

/// A cookie session and a bearer session with `curl` (which may carry `-x PROXY`).
fn print_curl(out: &mut String, base: &str, curl: &str, user: &str, pass: &str) {
    let _ = writeln!(out, "try it with curl (cookie session):");
    let _ = writeln!(
        out,
        "  CSRF=$({curl} -s -c jar -b jar {base}/login | sed -n 's/.*name=\"csrf\" value=\"\\([^\"]*\\)\".*/\\1/p')"
    );
    let _ = writeln!(
        out,
        "  {curl} -s -c jar -b jar -o /dev/null -w '%{{http_code}}\\n' -d \"csrf=$CSRF&username={user}&password={pass}\" {base}/login"
    );
    let _ = writeln!(out, "  {curl} -s -b jar '{base}/catalog?page=1'");
    let _ = writeln!(out, "or with a bearer token:");
    let _ = writeln!(
        out,
        "  TOKEN=$({curl} -s {base}/api/login -H 'content-type: application/json' -d '{{\"username\":\"{user}\",\"password\":\"{pass}\"}}' | sed -E 's/.*\"access_token\":\"([^\"]+)\".*/\\1/')"
    );
    let _ = writeln!(
        out,
        "  {curl} -s -H \"Authorization: Bearer $TOKEN\" '{base}/api/v1/items?page=1'"
    );
    let _ = writeln!(out, "Ctrl-C stops the target.");
}
