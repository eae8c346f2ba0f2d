//! Exits: their network identity, the gateway's draws, and sticky sessions.
//!
//! Everything here is pure: draws take a seeded generator and sticky
//! routing takes `now`, so the gateway's choices replay exactly.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;
use rand::Rng;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::geo::{EMBEDDED_RANGES, FixtureSet};
use crate::network::NetworkClass;
use crate::pool::config::GatewayConfig;
pub use crate::trace::proxy::{ExitInfo, RotateCause};

/// Most sticky sessions a gateway remembers; expired ones go first.
const MAX_STICKY: usize = 100_000;

/// The networks a gateway draws exits from.
#[derive(Clone, Debug, PartialEq)]
pub struct ExitDraw {
    networks: Vec<IpNetwork>,
}

impl ExitDraw {
    /// The gateway's `ranges`, plus every bundled fixture range of its `classes`.
    pub fn new(config: &GatewayConfig) -> Result<Self> {
        let mut networks = config.ranges.clone();
        if !config.classes.is_empty() {
            let fixtures =
                FixtureSet::parse(EMBEDDED_RANGES, "<embedded>/geo-fixtures/ranges.toml")?;
            let of_class = fixtures
                .ranges()
                .iter()
                .filter(|r| r.class.is_some_and(|c| config.classes.contains(&c)))
                .map(|r| r.network);
            networks.extend(of_class);
        }
        if networks.is_empty() {
            return Err(Error::config(
                "pool.gateway.classes",
                "no bundled fixture range has these classes",
            ));
        }
        Ok(Self { networks })
    }

    /// Classes present among the bundled fixture ranges (for error messages).
    pub fn bundled_classes() -> Vec<NetworkClass> {
        let Ok(fixtures) = FixtureSet::parse(EMBEDDED_RANGES, "ranges.toml") else {
            return Vec::new();
        };
        let mut classes: Vec<NetworkClass> =
            fixtures.ranges().iter().filter_map(|r| r.class).collect();
        classes.sort_by_key(|c| c.to_string());
        classes.dedup();
        classes
    }

    /// A random address from a random network, different from `avoid`
    /// whenever the networks hold another address.
    pub fn draw(&self, rng: &mut impl Rng, avoid: Option<IpAddr>) -> IpAddr {
        let mut ip = self.draw_once(rng);
        for _ in 0..32 {
            if Some(ip) != avoid {
                break;
            }
            ip = self.draw_once(rng);
        }
        ip
    }

    fn draw_once(&self, rng: &mut impl Rng) -> IpAddr {
        let net = self.networks[rng.random_range(0..self.networks.len())];
        host_in(net, rng)
    }
}

/// A random host of `net`, avoiding the network and broadcast addresses
/// when the network is large enough to have others.
pub(crate) fn host_in(net: IpNetwork, rng: &mut impl Rng) -> IpAddr {
    match net {
        IpNetwork::V4(n) => {
            let size = 1u64 << (32 - u32::from(n.prefix()));
            let offset = if size >= 4 {
                rng.random_range(1..size - 1)
            } else {
                rng.random_range(0..size)
            };
            let base = u32::from(n.network());
            IpAddr::V4(Ipv4Addr::from(base.wrapping_add(offset as u32)))
        }
        IpNetwork::V6(n) => {
            let bits = 128 - u32::from(n.prefix());
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX >> (128 - bits)
            };
            let offset = (rng.random::<u128>() & mask).max(1) & mask;
            IpAddr::V6(Ipv6Addr::from(u128::from(n.network()) | offset))
        }
    }
}

/// Where a sticky session is routed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StickyRoute {
    /// A session seen for the first time got this exit.
    New(IpAddr),
    /// The session keeps its exit.
    Kept(IpAddr),
    /// The session silently moved.
    Rotated {
        /// The old exit.
        from: IpAddr,
        /// The new exit.
        to: IpAddr,
        /// Why.
        cause: RotateCause,
    },
}

impl StickyRoute {
    /// The exit the request goes out from.
    pub fn exit(self) -> IpAddr {
        match self {
            Self::New(ip) | Self::Kept(ip) | Self::Rotated { to: ip, .. } => ip,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Sticky {
    exit: IpAddr,
    born: Timestamp,
    last: Timestamp,
}

/// Sticky sessions of a gateway: id → exit, with a TTL and an idle TTL.
#[derive(Debug)]
pub struct StickyTable {
    ttl_ms: u64,
    idle_ms: u64,
    entries: HashMap<String, Sticky>,
}

impl StickyTable {
    /// An empty table with these TTLs, in milliseconds.
    pub fn new(ttl_ms: u64, idle_ms: u64) -> Self {
        Self {
            ttl_ms,
            idle_ms,
            entries: HashMap::new(),
        }
    }

    /// Routes a request of session `id` at `now`; `draw` picks a new exit,
    /// avoiding the one it is given.
    pub fn route(
        &mut self,
        id: &str,
        now: Timestamp,
        draw: impl FnOnce(Option<IpAddr>) -> IpAddr,
    ) -> StickyRoute {
        let route = match self.entries.get(id) {
            None => StickyRoute::New(draw(None)),
            Some(s) if now.since(s.born).as_millis() >= u128::from(self.ttl_ms) => {
                StickyRoute::Rotated {
                    from: s.exit,
                    to: draw(Some(s.exit)),
                    cause: RotateCause::StickyTtl,
                }
            }
            Some(s) if now.since(s.last).as_millis() >= u128::from(self.idle_ms) => {
                StickyRoute::Rotated {
                    from: s.exit,
                    to: draw(Some(s.exit)),
                    cause: RotateCause::IdleTtl,
                }
            }
            Some(s) => StickyRoute::Kept(s.exit),
        };
        match route {
            StickyRoute::Kept(_) => {
                if let Some(s) = self.entries.get_mut(id) {
                    s.last = now;
                }
            }
            _ => {
                self.make_room(now);
                let entry = Sticky {
                    exit: route.exit(),
                    born: now,
                    last: now,
                };
                self.entries.insert(id.to_owned(), entry);
            }
        }
        route
    }

    /// How many sessions are remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no session is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn make_room(&mut self, now: Timestamp) {
        if self.entries.len() < MAX_STICKY {
            return;
        }
        let (ttl, idle) = (u128::from(self.ttl_ms), u128::from(self.idle_ms));
        self.entries.retain(|_, s| {
            now.since(s.born).as_millis() < ttl && now.since(s.last).as_millis() < idle
        });
        if self.entries.len() >= MAX_STICKY / 8 * 7 {
            // Still nearly full of live sessions: forget the least recently
            // used eighth, so the next scan is an eighth of the table away.
            let mut lasts: Vec<Timestamp> = self.entries.values().map(|s| s.last).collect();
            lasts.sort_unstable();
            let cut = lasts[lasts.len() / 8];
            self.entries.retain(|_, s| s.last > cut);
        }
    }
}

/// Whether `id` may name a sticky session: 1 to 64 characters of
/// letters, digits, `-`, `_` or `.`, so ids cannot fill memory.
pub fn valid_sticky_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The sticky session id in a gateway username, `<user>-session-<id>`:
/// returns the base user and the id (`None` without the suffix).
pub fn split_sticky(username: &str) -> (&str, Option<&str>) {
    if let Some(id) = username
        .strip_prefix("session-")
        .filter(|id| !id.is_empty())
    {
        return ("", Some(id));
    }
    match username.split_once("-session-") {
        Some((user, id)) if !id.is_empty() => (user, Some(id)),
        _ => (username, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::GeoDb;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn secs(n: u64) -> std::time::Duration {
        std::time::Duration::from_secs(n)
    }

    fn gateway(ranges: &[&str], classes: &[NetworkClass]) -> GatewayConfig {
        GatewayConfig {
            ranges: ranges.iter().map(|r| r.parse().expect("cidr")).collect(),
            classes: classes.to_vec(),
            sticky_ttl: std::time::Duration::from_secs(30),
            idle_ttl: std::time::Duration::from_secs(10),
            faults: Vec::new(),
        }
    }

    #[test]
    fn draws_stay_inside_the_ranges_and_repeat_under_a_seed() {
        let draw = ExitDraw::new(&gateway(&["127.0.1.0/24", "2001:db8::/64"], &[])).expect("draw");
        let nets: Vec<IpNetwork> = vec![
            "127.0.1.0/24".parse().expect("net"),
            "2001:db8::/64".parse().expect("net"),
        ];
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..200)
                .map(|_| draw.draw(&mut rng, None))
                .collect::<Vec<_>>()
        };
        let ips = run(7);
        assert!(ips.iter().all(|ip| nets.iter().any(|n| n.contains(*ip))));
        assert!(
            ips.iter()
                .all(|ip| ip.to_string() != "127.0.1.0" && ip.to_string() != "127.0.1.255")
        );
        assert_eq!(ips, run(7));
        assert_ne!(ips, run(8));
    }

    #[test]
    fn classes_draw_from_the_bundled_ranges_of_that_class() {
        let geo = GeoDb::embedded();
        let draw = ExitDraw::new(&gateway(&[], &[NetworkClass::Mobile])).expect("draw");
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..100 {
            let ip = draw.draw(&mut rng, None);
            assert_eq!(geo.lookup(ip).class, NetworkClass::Mobile, "{ip}");
        }
    }

    #[test]
    fn sticky_sessions_keep_their_exit_then_rotate_on_either_ttl() {
        let mut table = StickyTable::new(30_000, 10_000);
        let mut next = 0u8;
        let mut draw = |avoid: Option<IpAddr>| {
            next += 1;
            let ip = IpAddr::from([127, 0, 1, next]);
            assert_ne!(Some(ip), avoid);
            ip
        };
        let t = Timestamp::from_secs(1_000);
        let first = table.route("s1", t, &mut draw);
        assert_eq!(first, StickyRoute::New(IpAddr::from([127, 0, 1, 1])));
        assert_eq!(
            table.route("s1", t.plus(secs(9)), &mut draw),
            StickyRoute::Kept(first.exit())
        );
        // Used every 9 s: the idle TTL never runs out, the sticky TTL does.
        assert_eq!(
            table.route("s1", t.plus(secs(18)), &mut draw),
            StickyRoute::Kept(first.exit())
        );
        assert_eq!(
            table.route("s1", t.plus(secs(27)), &mut draw),
            StickyRoute::Kept(first.exit())
        );
        let moved = table.route("s1", t.plus(secs(30)), &mut draw);
        assert!(
            matches!(
                moved,
                StickyRoute::Rotated {
                    cause: RotateCause::StickyTtl,
                    ..
                }
            ),
            "{moved:?}"
        );
        // Idle for 10 s: moved again.
        let idle = table.route("s1", t.plus(secs(40)), &mut draw);
        assert!(
            matches!(
                idle,
                StickyRoute::Rotated {
                    cause: RotateCause::IdleTtl,
                    ..
                }
            ),
            "{idle:?}"
        );
        // Other sessions are independent.
        assert!(matches!(
            table.route("s2", t.plus(secs(40)), &mut draw),
            StickyRoute::New(_)
        ));
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn usernames_carry_the_sticky_id() {
        assert_eq!(
            split_sticky("scraper-session-abc"),
            ("scraper", Some("abc"))
        );
        assert_eq!(split_sticky("scraper"), ("scraper", None));
        assert_eq!(split_sticky("scraper-session-"), ("scraper-session-", None));
        assert_eq!(split_sticky("session-7"), ("", Some("7")));
        assert!(valid_sticky_id("crawl-1_a.b"));
        assert!(!valid_sticky_id(&"x".repeat(65)));
        assert!(!valid_sticky_id("a b"));
    }
}
