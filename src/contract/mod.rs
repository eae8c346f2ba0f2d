//! The client contract: the files and `SESSIONRANGE_*` variables a client under test is given, and the grade of what it left.
//!
//! `sessionrange run` and the test kit both hand a client the same
//! contract and grade it the same way: this module is that one place.

pub mod files;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::grade::{self, Criterion, Metrics, OutputCheck, RunFacts, RunView};
use crate::pool::ProxyPool;
use crate::range::Range;
use crate::scenario::Scenario;
use crate::site::{TargetState, TraceLimit};

/// The base URL the client is given: HTTPS when the scenario asks for it.
pub fn base_url(scenario: &Scenario, range: &Range) -> String {
    if scenario.run.https {
        range.https_url("")
    } else {
        range.url("")
    }
}

/// The files of one scenario's run. The client's files are in `client/`:
/// only what it is given (accounts, the CA) and what it writes (its
/// output). The trace, its log and the reports are beside that folder,
/// and the grade reads none of them back.
pub struct RunPaths {
    /// The run's folder.
    pub dir: PathBuf,
    /// The trace, beside the client's folder.
    pub trace: PathBuf,
    /// Where the client writes its records.
    pub output: PathBuf,
    /// The accounts file the client is given.
    pub accounts: PathBuf,
    /// The client's stdout and stderr.
    pub log: PathBuf,
    /// The run's CA certificate.
    pub ca: PathBuf,
    /// The system roots plus the run's CA.
    pub ca_bundle: PathBuf,
}

impl RunPaths {
    /// Makes the run's folders, as absolute paths, and removes what an
    /// earlier run in the same place left, so that nothing stale is graded.
    pub fn create(dir: &Path) -> Result<Self> {
        let client = dir.join("client");
        std::fs::create_dir_all(&client).map_err(|e| Error::io(&client, e))?;
        let dir = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
        let client = dir.join("client");
        let paths = Self {
            trace: dir.join("trace.jsonl"),
            log: dir.join("client.log"),
            output: client.join("output.jsonl"),
            accounts: client.join("accounts.json"),
            ca: client.join("ca.pem"),
            ca_bundle: client.join("ca-bundle.pem"),
            dir,
        };
        let old_traces = (1..=TraceLimit::default().keep).map(|i| {
            let mut name = paths.trace.clone().into_os_string();
            name.push(format!(".{i}"));
            PathBuf::from(name)
        });
        for f in old_traces.collect::<Vec<_>>().iter().chain([
            &paths.trace,
            &paths.output,
            &paths.accounts,
            &paths.log,
            &paths.ca,
            &paths.ca_bundle,
        ]) {
            match std::fs::remove_file(f) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(f, e)),
                _ => {}
            }
        }
        Ok(paths)
    }
}

/// Writes the files a client is given: the run's CA, the trust bundle
/// and the accounts.
pub fn hand_over(range: &Range, scenario: &Scenario, paths: &RunPaths) -> Result<()> {
    range.state().tls.write_ca(&paths.ca)?;
    range.state().tls.write_bundle(&paths.ca_bundle)?;
    write_accounts(scenario, &paths.accounts)
}

/// Writes the scenario's accounts for the client, as a JSON array of
/// `{username, password, totp_secret}`.
pub fn write_accounts(scenario: &Scenario, path: &Path) -> Result<()> {
    let accounts: Vec<serde_json::Value> = scenario
        .target
        .accounts
        .iter()
        .map(|a| {
            serde_json::json!({
                "username": a.username,
                "password": a.password,
                "totp_secret": a.totp_secret,
            })
        })
        .collect();
    let text = serde_json::to_vec_pretty(&accounts).unwrap_or_default();
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

/// The client contract: `SESSIONRANGE_*` variables, and for an HTTPS
/// target the conventional trust variables, pointed at the system roots
/// plus the run's CA: a user's own `REQUESTS_CA_BUNDLE` would otherwise
/// silently override what a client passes as `verify=`.
pub fn environment(
    scenario: &Scenario,
    base: &str,
    pool: &ProxyPool,
    paths: &RunPaths,
    deadline: Timestamp,
) -> Vec<(String, String)> {
    let proxies: Vec<&str> = pool.exits().iter().map(|e| e.url.as_str()).collect();
    let gateway = pool.gateway().map(|g| g.url.clone()).unwrap_or_default();
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let mut env = vec![
        ("SESSIONRANGE_TARGET", base.to_owned()),
        ("SESSIONRANGE_CA_CERT", path(&paths.ca)),
        ("SESSIONRANGE_PROXIES", proxies.join(",")),
        ("SESSIONRANGE_GATEWAY", gateway),
        ("SESSIONRANGE_ACCOUNTS", path(&paths.accounts)),
        ("SESSIONRANGE_OUTPUT", path(&paths.output)),
        ("SESSIONRANGE_SCENARIO", scenario.name.clone()),
        ("SESSIONRANGE_DEADLINE", deadline.as_secs().to_string()),
    ];
    if scenario.run.https {
        for var in TRUST_VARIABLES {
            env.push((var, path(&paths.ca_bundle)));
        }
    }
    env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Variables that name the trust store of OpenSSL, Python requests, curl
/// and Node.
pub const TRUST_VARIABLES: [&str; 4] = [
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
];

/// A finished run's grade, without the client's own criterion.
#[derive(Debug)]
pub struct Finished {
    /// Everything measured.
    pub metrics: Metrics,
    /// Pass/fail lines.
    pub criteria: Vec<Criterion>,
    /// Proxy moves, as sentences.
    pub proxy_notes: Vec<String>,
    /// What the HTML report draws.
    pub view: RunView,
}

/// A finished run's grade, without the client's own criterion: the
/// trace's facts and view (summed up as it was written), the client's
/// output read safely from `output`, and the pure [`grade::grade`].
pub fn grade_finished(
    scenario: &Scenario,
    state: &TargetState,
    output: &Path,
    started: Timestamp,
    ended: Timestamp,
) -> Finished {
    // The runner's own summary of the trace, made as it was written: the
    // file is for people, and a client could have edited it.
    let (facts, view) = state.trace.take_graded().unwrap_or_default();
    let limit = files::output_limit(u64::from(state.dataset.len()));
    let file = files::read_head(output, limit);
    let served: HashMap<_, _> = state.served_by_session();
    let served_ids = state.served_ids();
    let checked = OutputCheck::check(
        &String::from_utf8_lossy(&file.bytes),
        &state.dataset,
        &served_ids,
    );
    let run = RunFacts {
        trace: &facts,
        output: checked,
        dataset_size: u64::from(state.dataset.len()),
        served: &served,
        served_unique: served_ids.len(),
        abandoned_login_flows: state.abandoned_login_flows(),
        started,
        ended,
    };
    let (metrics, mut criteria) = grade::grade(&run, &scenario.grade);
    let problem = match (&file.problem, file.exists) {
        (Some(p), _) => Some(p.clone()),
        (None, false) => Some(format!("the client wrote no {}", output.display())),
        (None, true) => None,
    };
    if let Some(p) = problem
        && let Some(c) = criteria.iter_mut().find(|c| c.name == "completeness")
    {
        c.passed = c.passed && file.problem.is_none();
        c.details.push(p);
    }
    Finished {
        metrics,
        criteria,
        proxy_notes: facts.proxy_notes,
        view,
    }
}
