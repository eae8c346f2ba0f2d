//! Scenario files: a named target setup in TOML, loaded with errors that name file, line and field.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::grade::GradeConfig;
use crate::pool::PoolConfig;
use crate::site::config::{DirectAccess, TargetConfig};
use crate::timeline::TimelineEvent;
use crate::toml_file;
use std::time::Duration;

/// The scenario built into the binary, so `sessionrange serve` works from
/// any directory.
pub const EMBEDDED_DEFAULT: &str = include_str!("../scenarios/baseline.toml");

/// The scenario pack built into the binary, by file name, in run order.
pub const BUNDLED: &[(&str, &str)] = &[
    ("baseline.toml", include_str!("../scenarios/baseline.toml")),
    (
        "asn-drift.toml",
        include_str!("../scenarios/asn-drift.toml"),
    ),
    (
        "sticky-expiry.toml",
        include_str!("../scenarios/sticky-expiry.toml"),
    ),
    (
        "ip-drift-tolerated.toml",
        include_str!("../scenarios/ip-drift-tolerated.toml"),
    ),
    ("ua-drift.toml", include_str!("../scenarios/ua-drift.toml")),
    ("velocity.toml", include_str!("../scenarios/velocity.toml")),
    (
        "concurrent-use.toml",
        include_str!("../scenarios/concurrent-use.toml"),
    ),
    (
        "companion-cookies.toml",
        include_str!("../scenarios/companion-cookies.toml"),
    ),
    (
        "ttl-expiry.toml",
        include_str!("../scenarios/ttl-expiry.toml"),
    ),
    (
        "idle-timeout.toml",
        include_str!("../scenarios/idle-timeout.toml"),
    ),
    (
        "soft-logout.toml",
        include_str!("../scenarios/soft-logout.toml"),
    ),
    (
        "refresh-rotation.toml",
        include_str!("../scenarios/refresh-rotation.toml"),
    ),
    (
        "escalation.toml",
        include_str!("../scenarios/escalation.toml"),
    ),
    (
        "login-cost.toml",
        include_str!("../scenarios/login-cost.toml"),
    ),
    ("mixed.toml", include_str!("../scenarios/mixed.toml")),
    (
        "tls-drift.toml",
        include_str!("../scenarios/tls-drift.toml"),
    ),
];

/// A scenario: what the target serves and how strict it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, such as `baseline`.
    pub name: String,
    /// What the scenario tests.
    #[serde(default)]
    pub description: String,
    /// The target's accounts, data, login steps, tokens, responses and rules.
    #[serde(default)]
    pub target: TargetConfig,
    /// The proxy pool started next to the target.
    #[serde(default)]
    pub pool: PoolConfig,
    /// Scripted target-side events.
    #[serde(default)]
    pub timeline: Vec<TimelineEvent>,
    /// How the client is run.
    #[serde(default)]
    pub run: RunConfig,
    /// The pass marks.
    #[serde(default)]
    pub grade: GradeConfig,
}

/// How the runner runs a client on a scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// The client's deadline: it is killed (its whole process group) after this.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Whether `SESSIONRANGE_TARGET` is the HTTPS listener (the CA is in
    /// `SESSIONRANGE_CA_CERT` either way) rather than plain HTTP.
    pub https: bool,
    /// Target instances the run starts on the shared store named by
    /// `[target] store` (more than one needs it); the pool deals its
    /// upstream connections out to them in turn.
    pub instances: usize,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(15),
            https: false,
            instances: 1,
        }
    }
}

/// The most target instances a run starts.
pub const MAX_INSTANCES: usize = 8;

impl RunConfig {
    /// Checks the instance count against the store; errors name the field.
    fn validate(&self, store: Option<&str>) -> Result<()> {
        if self.timeout.is_zero() {
            return Err(Error::config("run.timeout", "must be positive"));
        }
        if !(1..=MAX_INSTANCES).contains(&self.instances) {
            let why = format!("must be 1 to {MAX_INSTANCES}");
            return Err(Error::config("run.instances", why));
        }
        if self.instances > 1 && store.is_none() {
            let why = "more than one instance needs a shared store: set [target] store = \"redis://HOST:PORT/DB\"";
            return Err(Error::config("run.instances", why));
        }
        Ok(())
    }
}

/// The longest scenario name.
const MAX_NAME: usize = 64;

/// A name is used as a folder of the run: a plain file-name-safe
/// identifier, never a path (`/etc`, `../x`, `.`).
fn check_name(name: &str) -> Result<()> {
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let all_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if first_ok && all_ok && name.len() <= MAX_NAME {
        return Ok(());
    }
    Err(Error::config(
        "name",
        format!(
            "{name:?} is not a plain name: use 1 to {MAX_NAME} letters, digits, '-', '_' or '.', \
             starting with a letter or digit"
        ),
    ))
}

impl Scenario {
    /// Parses and validates scenario text; errors name `path`, the line and the field.
    /// Settings whose default depends on the rest of the scenario are
    /// decided here, so the target's config says what it will do.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let mut scenario: Self = toml_file::deserialize(text).map_err(|p| Error::Scenario {
            path: path.to_owned(),
            line: p.line,
            field: p.field.unwrap_or_default(),
            message: p.message,
        })?;
        scenario.validate().map_err(|e| match e {
            Error::Config { field, message } => Error::Scenario {
                path: path.to_owned(),
                line: toml_file::field_line(text, &field),
                field,
                message,
            },
            other => other,
        })?;
        scenario.decide_defaults();
        Ok(scenario)
    }

    /// `[target] direct`: `refuse` when the scenario has a pool (static
    /// exits or a gateway), so no client can skip its network traps by
    /// connecting straight to the target; `allow` otherwise.
    fn decide_defaults(&mut self) {
        if self.target.direct.is_none() {
            self.target.direct = Some(if self.pool.is_empty() {
                DirectAccess::Allow
            } else {
                DirectAccess::Refuse
            });
        }
    }

    /// Checks every part; errors name the field.
    pub fn validate(&self) -> Result<()> {
        check_name(&self.name)?;
        self.target.validate("target")?;
        self.pool.validate("pool")?;
        self.grade.validate("grade")?;
        self.run.validate(self.target.store.as_deref())?;
        let accounts: Vec<&str> = self
            .target
            .accounts
            .iter()
            .map(|a| a.username.as_str())
            .collect();
        for (i, event) in self.timeline.iter().enumerate() {
            event.validate(&format!("timeline[{i}]"), &accounts)?;
        }
        Ok(())
    }

    /// Reads and parses the scenario file at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, path)
    }

    /// The bundled scenario pack, parsed.
    pub fn bundled() -> Result<Vec<Self>> {
        BUNDLED
            .iter()
            .map(|(file, text)| {
                Self::parse(text, &PathBuf::from(format!("<embedded>/scenarios/{file}")))
            })
            .collect()
    }

    /// The bundled scenario called `name` (its file name without
    /// `.toml`, such as `sticky-expiry`).
    pub fn named(name: &str) -> Result<Self> {
        let file = format!("{name}.toml");
        let Some((_, text)) = BUNDLED.iter().find(|(f, _)| *f == file) else {
            let names: Vec<_> = BUNDLED
                .iter()
                .map(|(f, _)| f.trim_end_matches(".toml"))
                .collect();
            return Err(Error::config(
                "scenario",
                format!(
                    "no bundled scenario `{name}`; there are: {}",
                    names.join(", ")
                ),
            ));
        };
        Self::parse(text, &PathBuf::from(format!("<embedded>/scenarios/{file}")))
    }

    /// The scenario built into the binary.
    pub fn embedded() -> Result<Self> {
        Self::parse(
            EMBEDDED_DEFAULT,
            &PathBuf::from("<embedded>/scenarios/baseline.toml"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_scenario_loads() {
        let s = Scenario::embedded().expect("embedded scenario is valid");
        assert_eq!(s.name, "baseline");
        assert!(!s.pool.is_empty(), "the default scenario ships a pool");
    }

    #[test]
    fn pool_errors_name_file_line_and_field() {
        let text = "name = \"x\"\n[[pool.exits]]\nname = \"a\"\nip = \"127.0.1.2\"\n[[pool.exits.faults]]\nkind = \"reset\"\nprobability = 2.0\nafter_bytes = 5\n";
        let err = Scenario::parse(text, Path::new("p.toml")).expect_err("bad probability");
        let msg = err.to_string();
        assert!(msg.starts_with("p.toml:7:"), "{msg}");
        assert!(msg.contains("pool.exits[0].faults[0].probability"), "{msg}");
        let text = "name = \"x\"\n[[pool.exits]]\nname = \"a\"\nip = \"not-an-ip\"\n";
        let err = Scenario::parse(text, Path::new("p.toml")).expect_err("bad ip");
        assert!(err.to_string().starts_with("p.toml:4:"), "{err}");
    }

    /// Parses `text` as `s.toml`, which must be refused at `line`, naming `field`.
    fn assert_refused_at(text: &str, line: usize, field: &str) {
        let err = Scenario::parse(text, Path::new("s.toml")).expect_err(text);
        let msg = err.to_string();
        assert!(msg.starts_with(&format!("s.toml:{line}:")), "{msg}");
        assert!(msg.contains(&format!("field `{field}`")), "{msg}");
    }

    #[test]
    fn a_challenge_too_hard_or_a_clearance_that_never_lives_names_its_line() {
        let text = "name = \"x\"\n[target.clearance]\nttl = \"1m\"\nbits = 30\n";
        assert_refused_at(text, 4, "target.clearance.bits");
        let text = "name = \"x\"\n[target.clearance]\nttl = \"0s\"\n";
        assert_refused_at(text, 3, "target.clearance.ttl");
    }

    #[test]
    fn several_instances_without_a_store_or_a_store_that_is_not_redis_name_their_line() {
        let text = "name = \"x\"\n[run]\ninstances = 2\n";
        assert_refused_at(text, 3, "run.instances");
        let text =
            "name = \"x\"\n[run]\ninstances = 9\n[target]\nstore = \"redis://127.0.0.1:1/0\"\n";
        assert_refused_at(text, 3, "run.instances");
        let text = "name = \"x\"\n[target]\nstore = \"memcached://127.0.0.1:1\"\n";
        assert_refused_at(text, 3, "target.store");
        let ok =
            "name = \"x\"\n[run]\ninstances = 2\n[target]\nstore = \"redis://127.0.0.1:1/0\"\n";
        Scenario::parse(ok, Path::new("s.toml")).expect("two instances on a store");
    }

    #[test]
    fn a_fault_of_a_later_exit_is_found_on_its_own_line() {
        // Line 7 is exit 0's fault; the bad one is exit 1's, on line 14.
        let text = "name = \"x\"\n[[pool.exits]]\nname = \"a\"\nip = \"127.0.1.2\"\n\
                    [[pool.exits.faults]]\nkind = \"reset\"\nprobability = 0.5\nafter_bytes = 5\n\
                    [[pool.exits]]\nname = \"b\"\nip = \"127.0.1.3\"\n[[pool.exits.faults]]\n\
                    kind = \"dies\"\nprobability = 2.0\n";
        assert_refused_at(text, 14, "pool.exits[1].faults[0].probability");
        // Inline arrays: each element has its own line.
        let text = "name = \"x\"\n[[pool.exits]]\nname = \"a\"\nip = \"127.0.1.2\"\n\
                    [[pool.exits]]\nname = \"b\"\nip = \"127.0.1.3\"\nfaults = [\n\
                    { kind = \"dies\" },\n  { kind = \"hangs\", probability = -1.0 },\n]\n";
        assert_refused_at(text, 10, "pool.exits[1].faults[1].probability");
    }

    #[test]
    fn a_wrong_default_names_the_line_of_its_table() {
        // `sticky_ttl` is left out; the gateway's header is the line to fix.
        let text =
            "name = \"x\"\n\n[pool.gateway]\nclasses = [\"residential\"]\nidle_ttl = \"0s\"\n";
        assert_refused_at(text, 3, "pool.gateway.sticky_ttl");
    }

    #[test]
    fn every_shipped_scenario_is_bundled_and_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("the scenarios directory")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".toml"))
            .collect();
        on_disk.sort();
        let mut bundled: Vec<String> = BUNDLED.iter().map(|(f, _)| (*f).to_owned()).collect();
        bundled.sort();
        assert_eq!(on_disk, bundled, "scenarios/ and BUNDLED differ");
        for (file, _) in BUNDLED {
            let s = Scenario::load(&dir.join(file)).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(format!("{}.toml", s.name), *file, "name matches the file");
            assert!(
                s.run.timeout <= Duration::from_secs(15),
                "{file}: at most 15 s"
            );
        }
        assert_eq!(Scenario::bundled().expect("bundled").len(), BUNDLED.len());
    }

    #[test]
    fn direct_access_is_refused_by_default_exactly_when_there_is_a_pool() {
        let p = Path::new("d.toml");
        let bare = Scenario::parse("name = \"x\"\n", p).expect("valid");
        assert_eq!(bare.target.direct, Some(DirectAccess::Allow));
        let gateway = "name = \"x\"\n[pool.gateway]\nclasses = [\"residential\"]\n";
        let s = Scenario::parse(gateway, p).expect("valid");
        assert_eq!(s.target.direct, Some(DirectAccess::Refuse));
        let allowed = "name = \"x\"\n[target]\ndirect = \"allow\"\n[[pool.exits]]\nname = \"a\"\nip = \"127.0.1.2\"\n";
        let s = Scenario::parse(allowed, p).expect("valid");
        assert_eq!(s.target.direct, Some(DirectAccess::Allow));
        let err = Scenario::parse("name = \"x\"\n[target]\ndirect = \"maybe\"\n", p)
            .expect_err("unknown value");
        assert!(err.to_string().starts_with("d.toml:3:"), "{err}");
        for s in Scenario::bundled().expect("bundled") {
            assert!(
                !s.pool.is_empty(),
                "{}: every bundled scenario has a pool",
                s.name
            );
            assert_eq!(s.target.direct, Some(DirectAccess::Refuse), "{}", s.name);
        }
    }

    #[test]
    fn no_bundled_scenario_hides_a_short_lifetime_behind_a_long_grace() {
        for s in Scenario::bundled().expect("bundled") {
            let life = s.target.rules.lifetime;
            let tokens = &s.target.tokens;
            let short = |ttl: Duration| ttl < s.run.timeout;
            for (what, ttl, grace) in [
                ("absolute_ttl", life.absolute_ttl, life.skew_grace),
                ("idle_ttl", life.idle_ttl, life.skew_grace),
                ("access_ttl", tokens.access_ttl, tokens.skew),
            ] {
                assert!(
                    !short(ttl) || grace * 10 <= ttl,
                    "{}: {what} {ttl:?} with a grace of {grace:?}",
                    s.name
                );
            }
        }
    }

    #[test]
    fn timeline_and_grade_errors_name_their_field() {
        let text = "name = \"x\"\n[[timeline]]\nat = \"1s\"\naction = \"revoke-account\"\naccount = \"zed\"\n";
        let err = Scenario::parse(text, Path::new("t.toml")).expect_err("unknown account");
        let msg = err.to_string();
        assert!(
            msg.starts_with("t.toml:5:") && msg.contains("timeline[0].account"),
            "{msg}"
        );
        let text = "name = \"x\"\n[grade]\nmin_completeness = 1.5\n";
        let err = Scenario::parse(text, Path::new("g.toml")).expect_err("share over 1");
        assert!(err.to_string().starts_with("g.toml:3:"), "{err}");
    }

    #[test]
    fn a_name_that_is_a_path_is_refused_with_file_line_and_field() {
        let p = Path::new("evil.toml");
        for bad in ["/tmp/x", "../escape", ".", "", "a/b", "a b", "-x"] {
            let text = format!("# a scenario\nname = {bad:?}\n");
            let err = Scenario::parse(&text, p).expect_err(bad).to_string();
            assert!(
                err.contains("evil.toml") && err.contains("name"),
                "{bad}: {err}"
            );
            assert!(err.contains(":2"), "the line: {err}");
        }
        Scenario::parse("name = \"ok-1.v2_x\"\n", p).expect("a plain name");
    }

    #[test]
    fn unknown_keys_name_file_line_and_field() {
        let text = "name = \"x\"\n[target.login]\npow_bits = 4\nfoo = 1\n";
        let err = Scenario::parse(text, Path::new("s.toml")).expect_err("unknown key");
        let msg = err.to_string();
        assert!(msg.starts_with("s.toml:4:"), "{msg}");
        assert!(msg.contains("target.login"), "{msg}");
        assert!(msg.contains("foo"), "{msg}");
    }

    #[test]
    fn impossible_values_name_file_line_and_field() {
        let text = "name = \"x\"\n\n[target.rules.session_velocity]\nrate = 0.0\n";
        let err = Scenario::parse(text, Path::new("s.toml")).expect_err("zero rate");
        let msg = err.to_string();
        assert!(msg.starts_with("s.toml:4:"), "{msg}");
        assert!(msg.contains("target.rules.session_velocity.rate"), "{msg}");
    }
}
