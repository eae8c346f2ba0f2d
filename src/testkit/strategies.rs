//! Proptest strategies for realistic inputs: addresses from the geo fixtures, real client stacks, request contexts, drift and fault sequences, scenario variants.
//!
//! Every value is drawn from something real: addresses from the ranges
//! compiled into the crate, looked up in the embedded MaxMind databases
//! (so their ASN, class and country are what the target sees); each
//! client stack is a User-Agent with a JA4 that the same stack sent (the
//! hellos are in `tests/data/fingerprint/live-clienthellos.jsonl`).

use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::Duration;

use ipnetwork::IpNetwork;
use proptest::prelude::*;
use rand::SeedableRng as _;
use rand::rngs::StdRng;

use crate::context::RequestContext;
use crate::fuzz::space::{self, Variant};
use crate::geo::{EMBEDDED_RANGES, FIXTURE_SOURCE, FixtureSet, GeoDb};
use crate::network::{NetworkClass, NetworkInfo};
use crate::pool::config::{FaultConfig, FaultKind};
use crate::pool::exits::host_in;
use crate::scenario::Scenario;

/// An address and what the geo database says of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Located {
    /// The address.
    pub ip: IpAddr,
    /// Its ASN, organisation, class, country and location.
    pub network: NetworkInfo,
}

/// A client stack: a User-Agent and a JA4 that stack sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stack {
    /// The client, such as `curl_cffi chrome131` or `python requests`.
    pub client: &'static str,
    /// Its `User-Agent` header.
    pub user_agent: &'static str,
    /// The JA4 of one of its ClientHellos.
    pub ja4: &'static str,
}

impl Stack {
    /// Whether it is a browser (or impersonates one), by its User-Agent.
    pub fn is_browser(&self) -> bool {
        self.user_agent.starts_with("Mozilla/")
    }
}

/// The stacks, from `stacks.tsv`.
static STACKS: LazyLock<Vec<Stack>> = LazyLock::new(|| {
    let rows = include_str!("stacks.tsv").lines();
    let rows = rows.filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    let stack = |l: &'static str| {
        let mut f = l.split('\t');
        let (client, user_agent, ja4) = (f.next()?, f.next()?, f.next()?);
        Some(Stack {
            client,
            user_agent,
            ja4,
        })
    };
    rows.filter_map(stack).collect()
});

/// The fixture ranges, and the embedded database to look their addresses
/// up in.
static RANGES: LazyLock<(Vec<IpNetwork>, GeoDb)> = LazyLock::new(|| {
    let set = FixtureSet::parse(EMBEDDED_RANGES, FIXTURE_SOURCE);
    let ranges = set.map(|s| s.ranges().iter().map(|r| r.network).collect());
    (ranges.unwrap_or_default(), GeoDb::embedded())
});

/// Every client stack the kit knows (42 pairs of User-Agent and JA4).
pub fn all_stacks() -> &'static [Stack] {
    &STACKS
}

/// A client stack.
pub fn stacks() -> BoxedStrategy<Stack> {
    prop::sample::select(all_stacks()).boxed()
}

/// A real User-Agent.
pub fn user_agents() -> BoxedStrategy<&'static str> {
    stacks().prop_map(|s| s.user_agent).boxed()
}

/// A real JA4.
pub fn ja4s() -> BoxedStrategy<&'static str> {
    stacks().prop_map(|s| s.ja4).boxed()
}

/// An address in one of the geo fixtures' ranges, with its network.
pub fn addresses() -> BoxedStrategy<Located> {
    addresses_where(|_| true)
}

/// An address in a fixture range of `class`.
pub fn addresses_of(class: NetworkClass) -> BoxedStrategy<Located> {
    addresses_where(move |n| n.class == class)
}

fn addresses_where(keep: impl Fn(&NetworkInfo) -> bool) -> BoxedStrategy<Located> {
    let (ranges, geo) = &*RANGES;
    let kept: Vec<IpNetwork> = ranges
        .iter()
        .copied()
        .filter(|n| keep(&geo.lookup(n.network())))
        .collect();
    assert!(!kept.is_empty(), "no fixture range matches");
    (prop::sample::select(kept), any::<u64>())
        .prop_map(|(net, seed)| locate(host_in(net, &mut StdRng::seed_from_u64(seed))))
        .boxed()
}

/// `ip` with what the embedded database says of it.
pub fn locate(ip: IpAddr) -> Located {
    Located {
        ip,
        network: RANGES.1.lookup(ip),
    }
}

/// Accept-Language values browsers send.
const LANGUAGES: [&str; 5] = [
    "en-US,en;q=0.9",
    "en-GB,en;q=0.9",
    "de-DE,de;q=0.9,en;q=0.8",
    "fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7",
    "ja,en-US;q=0.9,en;q=0.8",
];

/// A request context as the target would build it: an address with its
/// network, a stack's User-Agent and JA4, an Accept-Language, and the
/// header order of a browser or of a library client.
pub fn contexts() -> BoxedStrategy<RequestContext> {
    (addresses(), stacks(), prop::sample::select(&LANGUAGES[..]))
        .prop_map(|(at, stack, language)| context(&at, &stack, language))
        .boxed()
}

/// The context `stack` sends from `at` with `language`.
pub fn context(at: &Located, stack: &Stack, language: &str) -> RequestContext {
    let browser = [
        ("host", "target"),
        ("user-agent", stack.user_agent),
        ("accept", "text/html,application/xhtml+xml"),
        ("accept-language", language),
        ("accept-encoding", "gzip, deflate, br"),
        ("cookie", "sid=0"),
    ];
    let library = [
        ("host", "target"),
        ("user-agent", stack.user_agent),
        ("accept-encoding", "gzip, deflate"),
        ("accept", "*/*"),
        ("accept-language", language),
        ("cookie", "sid=0"),
    ];
    let headers = if stack.is_browser() { browser } else { library };
    let mut ctx = RequestContext::from_headers(Some(at.ip), at.network.clone(), headers);
    ctx.ja4 = Some(stack.ja4.to_owned());
    ctx
}

/// One change in a session's context.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// The client moved to another address (and maybe network).
    Address(Located),
    /// The client switched stacks: User-Agent, header order and JA4.
    Stack(Stack),
    /// The client sent another Accept-Language.
    Language(&'static str),
    /// The client paused this long before the next request.
    Pause(Duration),
}

/// A change after a number of requests on the session.
#[derive(Clone, Debug, PartialEq)]
pub struct Drift {
    /// Requests sent with the context before this change.
    pub after_requests: u32,
    /// The change.
    pub change: Change,
}

impl Change {
    /// `ctx` with this change made (a pause changes nothing in it).
    pub fn apply(&self, ctx: &RequestContext) -> RequestContext {
        let language = ctx.accept_language.as_deref().unwrap_or(LANGUAGES[0]);
        let at = Located {
            ip: ctx.ip.unwrap_or(IpAddr::from([127, 0, 0, 1])),
            network: ctx.network.clone(),
        };
        match self {
            Self::Address(to) => {
                let mut moved = ctx.clone();
                moved.ip = Some(to.ip);
                moved.network = to.network.clone();
                moved
            }
            Self::Stack(stack) => context(&at, stack, language),
            Self::Language(l) => {
                let mut changed = ctx.clone();
                changed.accept_language = Some((*l).to_owned());
                changed
            }
            Self::Pause(_) => ctx.clone(),
        }
    }
}

/// One change of context.
pub fn changes() -> BoxedStrategy<Change> {
    prop_oneof![
        addresses().prop_map(Change::Address),
        stacks().prop_map(Change::Stack),
        prop::sample::select(&LANGUAGES[..]).prop_map(Change::Language),
        (1u64..3_600_000).prop_map(|ms| Change::Pause(Duration::from_millis(ms))),
    ]
    .boxed()
}

/// Up to `max` changes, each after 0 to 20 requests; shrinks toward
/// fewer changes, earlier.
pub fn drifts(max: usize) -> BoxedStrategy<Vec<Drift>> {
    let drift = (0u32..20, changes()).prop_map(|(after_requests, change)| Drift {
        after_requests,
        change,
    });
    prop::collection::vec(drift, 0..=max).boxed()
}

/// One proxy fault as a scenario file writes it, firing after 1 to 20
/// requests of its exit: the exit dies, hangs, slows down, answers 407
/// or 502, or is banned by the target.
pub fn faults() -> BoxedStrategy<FaultConfig> {
    let kinds = [
        FaultKind::Dies,
        FaultKind::Hangs,
        FaultKind::Latency,
        FaultKind::Auth407,
        FaultKind::Connect502,
        FaultKind::Banned,
    ];
    (prop::sample::select(kinds.to_vec()), 1u64..20, 10u64..2_000)
        .prop_map(|(kind, after, ms)| FaultConfig {
            kind,
            after_requests: Some(after),
            after_connections: None,
            after: None,
            probability: 1.0,
            latency: (kind == FaultKind::Latency).then(|| Duration::from_millis(ms)),
            jitter: None,
            bytes_per_sec: None,
            after_bytes: None,
        })
        .boxed()
}

/// A variant of the fuzzer's space (see `sessionrange fuzz`): knobs that
/// each arm one trap, shrinking toward none.
pub fn variants() -> BoxedStrategy<Variant> {
    space::variants()
}

/// `base` with a drawn variant's traps, and the grade lines and accounts
/// that keep it passable by a careful client; named like the fuzzer's
/// variants (`{base}-variant`).
pub fn scenarios(base: &Scenario) -> BoxedStrategy<Scenario> {
    let base = base.clone();
    variants()
        .prop_map(move |v| v.apply(&base, &format!("{}-variant", base.name)))
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::test_runner::TestRunner;

    const LIVE: &str = include_str!("../../tests/data/fingerprint/live-clienthellos.jsonl");

    fn draw<T: std::fmt::Debug>(strategy: &BoxedStrategy<T>, n: usize) -> Vec<T> {
        let mut runner = TestRunner::deterministic();
        (0..n)
            .map(|_| strategy.new_tree(&mut runner).expect("draws").current())
            .collect()
    }

    #[test]
    fn every_stack_pairs_its_user_agent_with_a_ja4_that_client_sent() {
        let live: Vec<serde_json::Value> = LIVE
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        assert_eq!(all_stacks().len(), 42);
        for s in all_stacks() {
            let sent = live
                .iter()
                .any(|h| h["client"] == s.client && h["ja4"] == s.ja4);
            assert!(sent, "{} never sent {}", s.client, s.ja4);
            assert!(!s.user_agent.is_empty());
        }
        let browsers = all_stacks().iter().filter(|s| s.is_browser()).count();
        assert!(browsers > 20 && browsers < 42, "{browsers}");
    }

    #[test]
    fn addresses_carry_what_the_embedded_database_says() {
        let geo = GeoDb::embedded();
        for at in draw(&addresses(), 300) {
            assert_eq!(at.network, geo.lookup(at.ip), "{}", at.ip);
            assert!(at.network.asn.is_some(), "{} is in no fixture range", at.ip);
        }
        for class in [
            NetworkClass::Residential,
            NetworkClass::Datacenter,
            NetworkClass::Mobile,
        ] {
            for at in draw(&addresses_of(class), 50) {
                assert_eq!(at.network.class, class, "{}", at.ip);
            }
        }
        let asns: std::collections::BTreeSet<_> = draw(&addresses(), 300)
            .into_iter()
            .filter_map(|a| a.network.asn)
            .collect();
        assert!(asns.len() >= 5, "{asns:?}");
    }

    #[test]
    fn contexts_are_whole_and_each_change_touches_only_its_part() {
        for (ctx, change) in draw(&contexts(), 100)
            .into_iter()
            .zip(draw(&changes(), 100))
        {
            assert!(ctx.ja4.is_some() && ctx.user_agent.is_some() && ctx.ip.is_some());
            assert!(!ctx.header_order.is_empty() && !ctx.http_fingerprint.is_empty());
            let after = change.apply(&ctx);
            let same_network = after.ip == ctx.ip && after.network == ctx.network;
            let same_stack = after.user_agent == ctx.user_agent && after.ja4 == ctx.ja4;
            let same_language = after.accept_language == ctx.accept_language;
            match change {
                Change::Address(to) => {
                    assert_eq!((after.ip, &after.network), (Some(to.ip), &to.network));
                    assert!(same_stack && same_language);
                }
                Change::Stack(s) => {
                    assert_eq!(after.ja4.as_deref(), Some(s.ja4));
                    assert!(same_network && same_language);
                }
                Change::Language(l) => {
                    assert_eq!(after.accept_language.as_deref(), Some(l));
                    assert!(same_network && same_stack);
                }
                Change::Pause(_) => assert_eq!(after, ctx),
            }
        }
    }

    #[test]
    fn drawn_faults_are_valid_scenario_faults() {
        for fault in draw(&faults(), 200) {
            fault.validate("fault").expect("valid");
        }
        let drifts = draw(&drifts(4), 100);
        assert!(drifts.iter().all(|d| d.len() <= 4));
        assert!(drifts.iter().any(|d| d.len() == 4) && drifts.iter().any(Vec::is_empty));
    }
}
