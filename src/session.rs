//! Sessions and accounts: the state the engine keeps between requests.

use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::context::BirthContext;
use crate::network::Location;
use crate::verdict::{Reason, Verdict};

/// A session's identifier: 128 random bits chosen by the shell.
///
/// The engine never generates one, so decisions stay deterministic and a
/// recorded trace can be replayed with the same ids.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(u128);

impl SessionId {
    /// Wraps 128 bits.
    pub const fn from_u128(bits: u128) -> Self {
        Self(bits)
    }

    /// The 128 bits.
    pub const fn as_u128(self) -> u128 {
        self.0
    }
}

impl SessionId {
    /// The 32 lowercase hex digits, without going through `fmt`: every
    /// trace line and cookie carries one.
    fn hex(&self) -> [u8; 32] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 32];
        for (i, d) in out.iter_mut().enumerate() {
            *d = DIGITS[((self.0 >> (124 - 4 * i)) & 0xf) as usize];
        }
        out
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.hex();
        f.write_str(std::str::from_utf8(&hex).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

impl FromStr for SessionId {
    type Err = InvalidSessionId;

    /// Parses exactly 32 hex digits; anything else (a forged or garbage
    /// cookie) is refused.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 32 {
            return Err(InvalidSessionId);
        }
        let digit = |b: u8| char::from(b).to_digit(16).map(u128::from);
        s.bytes()
            .try_fold(0u128, |id, b| Some(id << 4 | digit(b)?))
            .map(Self)
            .ok_or(InvalidSessionId)
    }
}

/// A string that is not a session id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a session id: expected 32 hex digits")]
pub struct InvalidSessionId;

impl Serialize for SessionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let hex = self.hex();
        s.serialize_str(std::str::from_utf8(&hex).map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether a session lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "reason", rename_all = "lowercase")]
pub enum SessionState {
    /// The session may be used.
    Active,
    /// The session ended naturally.
    Expired(Reason),
    /// The session was invalidated.
    Revoked(Reason),
}

impl SessionState {
    /// The verdict a request on a session in this state gets, if it is dead.
    pub fn dead_verdict(self) -> Option<Verdict> {
        match self {
            Self::Active => None,
            Self::Expired(r) => Some(Verdict::Expire(r)),
            Self::Revoked(Reason::AccountBanned) => Some(Verdict::Ban(Reason::AccountBanned)),
            Self::Revoked(r) => Some(Verdict::Revoke(r)),
        }
    }
}

/// An address a session was used from, with when it was last seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sighting {
    /// The address.
    pub ip: Option<IpAddr>,
    /// Its ASN.
    pub asn: Option<u32>,
    /// The last request from it.
    pub last: Timestamp,
}

/// How many distinct addresses a session remembers.
const MAX_SIGHTINGS: usize = 16;

/// The distinct addresses a session was used from.
///
/// The first lives inline: most sessions are only ever seen from one
/// address, and then checking it costs no allocation and no cache miss.
#[derive(Clone, Debug)]
pub struct Sightings {
    first: Sighting,
    more: Vec<Sighting>,
}

impl Sightings {
    fn new(first: Sighting) -> Self {
        Self {
            first,
            more: Vec::new(),
        }
    }

    /// Every address, the first one first.
    pub fn iter(&self) -> impl Iterator<Item = &Sighting> + Clone {
        std::iter::once(&self.first).chain(&self.more)
    }

    /// How many distinct addresses are remembered.
    pub fn len(&self) -> usize {
        1 + self.more.len()
    }

    /// Always false: a session is seen from at least its birth address.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Records `ip` seen at `now`, forgetting the stalest address when full.
    fn sight(&mut self, ip: Option<IpAddr>, asn: Option<u32>, now: Timestamp) {
        let fresh = Sighting { ip, asn, last: now };
        if let Some(s) = std::iter::once(&mut self.first)
            .chain(&mut self.more)
            .find(|s| s.ip == ip)
        {
            *s = fresh;
            return;
        }
        if self.len() < MAX_SIGHTINGS {
            self.more.push(fresh);
            return;
        }
        let oldest = self
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| s.last)
            .map(|(i, _)| i);
        match oldest {
            Some(0) | None => self.first = fresh,
            Some(i) => self.more[i - 1] = fresh,
        }
    }
}

impl Serialize for Sightings {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Sightings {
    /// A non-empty list, as written: a shared store hands sessions back.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut all = Vec::<Sighting>::deserialize(d)?.into_iter();
        let first = all.next().ok_or_else(|| {
            serde::de::Error::custom("a session is seen from one address at least")
        })?;
        Ok(Self {
            first,
            more: all.take(MAX_SIGHTINGS - 1).collect(),
        })
    }
}

/// How many recent request times a session remembers, for cadence.
pub(crate) const RECENT: usize = 16;

/// One live or dead session. It reads back from what it writes, so a
/// shared store can keep it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Session {
    /// Its id.
    pub id: SessionId,
    /// The account that logged in.
    pub account: Arc<str>,
    /// The account's standing, shared by all of its sessions, so a request
    /// reaches it without a second map lookup.
    #[serde(skip)]
    pub(crate) standing: Arc<Mutex<Account>>,
    /// The context at login.
    pub birth: BirthContext,
    /// Login time.
    pub created: Timestamp,
    /// The last request that the session survived.
    pub last_seen: Timestamp,
    /// Requests served.
    pub uses: u64,
    /// Alive, expired or revoked.
    pub state: SessionState,
    /// Distinct addresses seen, most recent last.
    pub sightings: Sightings,
    /// Requests currently in flight.
    pub in_flight: u32,
    /// Last known location and when it was seen, for impossible travel.
    pub(crate) last_location: Option<(Location, Timestamp)>,
    /// GCRA theoretical arrival time, in microseconds since the epoch.
    pub(crate) velocity_tat_us: u64,
    /// Recent request times, kept only while the cadence rule is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) recent: Option<Box<RecentTimes>>,
}

impl Session {
    /// A fresh active session.
    pub(crate) fn new(
        id: SessionId,
        account: Arc<str>,
        standing: Arc<Mutex<Account>>,
        birth: BirthContext,
        now: Timestamp,
    ) -> Self {
        let first = Sighting {
            ip: birth.ip,
            asn: birth.network.asn,
            last: now,
        };
        let sightings = Sightings::new(first);
        let last_location = birth.network.location.map(|l| (l, now));
        Self {
            id,
            account,
            standing,
            birth,
            created: now,
            last_seen: now,
            uses: 0,
            state: SessionState::Active,
            sightings,
            in_flight: 0,
            last_location,
            velocity_tat_us: 0,
            recent: None,
        }
    }

    /// Whether the session may still be used.
    pub fn is_active(&self) -> bool {
        self.state == SessionState::Active
    }

    /// Records that the session was seen from `ip` at `now`.
    pub(crate) fn sight(&mut self, ip: Option<IpAddr>, asn: Option<u32>, now: Timestamp) {
        self.sightings.sight(ip, asn, now);
    }

    /// Records a request time for the cadence rule.
    pub(crate) fn push_recent(&mut self, now: Timestamp) {
        let offset = u32::try_from(now.since(self.created).as_millis()).unwrap_or(u32::MAX);
        self.recent.get_or_insert_with(Box::default).push(offset);
    }

    /// The last `n` request times (milliseconds since `created`), oldest first.
    pub(crate) fn recent_times(&self, n: usize) -> impl Iterator<Item = u32> + '_ {
        self.recent.iter().flat_map(move |r| r.last(n))
    }
}

/// Everything of a session but its birth context: what a shared store
/// writes on every decision, the birth context being written once, at
/// login. Borrowed from a session to write, owned when read back. The
/// store encodes it with `postcard`, which has no optional fields: every
/// field is always written.
#[derive(Serialize, Deserialize)]
pub(crate) struct Live<'a> {
    id: SessionId,
    #[serde(borrow)]
    account: std::borrow::Cow<'a, str>,
    created: Timestamp,
    last_seen: Timestamp,
    uses: u64,
    #[serde(with = "state_code")]
    state: SessionState,
    sightings: std::borrow::Cow<'a, Sightings>,
    in_flight: u32,
    last_location: Option<(Location, Timestamp)>,
    velocity_tat_us: u64,
    recent: Option<std::borrow::Cow<'a, RecentTimes>>,
}

impl Live<'_> {
    /// The session it is the state of.
    pub(crate) fn id(&self) -> SessionId {
        self.id
    }

    /// Its account's name.
    pub(crate) fn account(&self) -> &str {
        &self.account
    }
}

impl Session {
    /// The session but its birth context, to write.
    pub(crate) fn live(&self) -> Live<'_> {
        use std::borrow::Cow::Borrowed;
        Live {
            id: self.id,
            account: Borrowed(&self.account),
            created: self.created,
            last_seen: self.last_seen,
            uses: self.uses,
            state: self.state,
            sightings: Borrowed(&self.sightings),
            in_flight: self.in_flight,
            last_location: self.last_location,
            velocity_tat_us: self.velocity_tat_us,
            recent: self.recent.as_deref().map(Borrowed),
        }
    }

    /// The session whose live state is `live` and birth context `birth`.
    pub(crate) fn from_parts(live: Live<'_>, birth: BirthContext) -> Self {
        Self {
            id: live.id,
            account: Arc::from(live.account.as_ref()),
            standing: Arc::default(),
            birth,
            created: live.created,
            last_seen: live.last_seen,
            uses: live.uses,
            state: live.state,
            sightings: live.sightings.into_owned(),
            in_flight: live.in_flight,
            last_location: live.last_location,
            velocity_tat_us: live.velocity_tat_us,
            recent: live.recent.map(|r| Box::new(r.into_owned())),
        }
    }
}

/// A session's state as a shared store writes it: its kind (`0` active,
/// `1` expired, `2` revoked) and its reason's code, which stays the same
/// when reasons are added or reordered; `postcard` would write the
/// variant's index.
mod state_code {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::SessionState;
    use crate::verdict::Reason;

    /// Writes `state` as its kind and its reason's code.
    pub(super) fn serialize<S: Serializer>(state: &SessionState, s: S) -> Result<S::Ok, S::Error> {
        let (kind, reason) = match *state {
            SessionState::Active => (0_u8, None),
            SessionState::Expired(r) => (1, Some(r.code())),
            SessionState::Revoked(r) => (2, Some(r.code())),
        };
        (kind, reason).serialize(s)
    }

    /// Reads a state back; a kind and reason that do not go together, or a
    /// code no reason has, is an error.
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SessionState, D::Error> {
        let (kind, code) = <(u8, Option<String>)>::deserialize(d)?;
        let reason = code.and_then(|c| Reason::ALL.iter().copied().find(|r| r.code() == c));
        match (kind, reason) {
            (0, None) => Ok(SessionState::Active),
            (1, Some(r)) => Ok(SessionState::Expired(r)),
            (2, Some(r)) => Ok(SessionState::Revoked(r)),
            _ => Err(serde::de::Error::custom("not a session state")),
        }
    }
}

/// A ring of recent request times, as milliseconds since the session began.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(try_from = "RingParts")]
pub(crate) struct RecentTimes {
    times: [u32; RECENT],
    len: u8,
    next: u8,
}

/// A ring as stored, before its length and cursor are known to fit it.
#[derive(Deserialize)]
struct RingParts {
    /// The times, in the order the ring holds them.
    times: [u32; RECENT],
    /// How many of them are set.
    len: u8,
    /// Where the next goes.
    next: u8,
}

impl TryFrom<RingParts> for RecentTimes {
    type Error = String;

    /// A length or cursor past the ring is refused: `push` and `last`
    /// index with them.
    fn try_from(p: RingParts) -> Result<Self, String> {
        if usize::from(p.len) > RECENT || usize::from(p.next) >= RECENT {
            return Err(format!(
                "a ring of {RECENT} cannot hold {} at {}",
                p.len, p.next
            ));
        }
        Ok(Self {
            times: p.times,
            len: p.len,
            next: p.next,
        })
    }
}

impl RecentTimes {
    fn push(&mut self, offset: u32) {
        self.times[usize::from(self.next)] = offset;
        self.next = ((usize::from(self.next) + 1) % RECENT) as u8;
        self.len = (usize::from(self.len) + 1).min(RECENT) as u8;
    }

    fn last(&self, n: usize) -> impl Iterator<Item = u32> + '_ {
        let take = n.min(usize::from(self.len));
        let start = usize::from(self.next) + RECENT - take;
        (0..take).map(move |i| self.times[(start + i) % RECENT])
    }
}

/// How many invalidations an account remembers.
const MAX_HISTORY: usize = 64;

/// One account's standing: its invalidation history and any ban.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// Security invalidations of its sessions, oldest first.
    pub invalidations: VecDeque<(Timestamp, Reason)>,
    /// The end of the current or last ban.
    pub banned_until: Option<Timestamp>,
    /// Times the account was banned.
    pub bans: u32,
    /// GCRA theoretical arrival time across all of its sessions.
    pub(crate) velocity_tat_us: u64,
    /// GCRA theoretical arrival time of its next login attempt.
    #[serde(default)]
    pub(crate) login_tat_us: u64,
}

impl Account {
    /// Whether the account is banned at `now`.
    pub fn is_banned(&self, now: Timestamp) -> bool {
        self.banned_until.is_some_and(|until| now < until)
    }

    /// Records a security invalidation and returns how many fall inside
    /// the `window` ending at `now`.
    pub(crate) fn record_invalidation(
        &mut self,
        now: Timestamp,
        reason: Reason,
        window: std::time::Duration,
    ) -> u32 {
        if self.invalidations.len() == MAX_HISTORY {
            self.invalidations.pop_front();
        }
        self.invalidations.push_back((now, reason));
        let recent = self
            .invalidations
            .iter()
            .filter(|(t, _)| now.since(*t) < window && *t <= now)
            .count();
        u32::try_from(recent).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A session state in the shared store's encoding.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Stored(#[serde(with = "state_code")] SessionState);

    /// Every state reads back as written; a reason is kept by its code, so
    /// one whose code no reason has is an error, not another reason.
    #[test]
    fn a_stored_state_reads_back_by_its_reasons_code() {
        for reason in Reason::ALL {
            for state in [
                SessionState::Active,
                SessionState::Expired(*reason),
                SessionState::Revoked(*reason),
            ] {
                let bytes = postcard::to_allocvec(&Stored(state)).expect("encodes");
                let back: Stored = postcard::from_bytes(&bytes).expect("decodes");
                assert_eq!(back.0, state);
            }
        }
        let unknown = postcard::to_allocvec(&(2_u8, Some("NOT_A_REASON"))).expect("encodes");
        assert!(postcard::from_bytes::<Stored>(&unknown).is_err());
        let active_with_reason = postcard::to_allocvec(&(0_u8, Some("IP_DRIFT"))).expect("encodes");
        assert!(postcard::from_bytes::<Stored>(&active_with_reason).is_err());
    }

    proptest::proptest! {
        /// The hand-written hex agrees with `fmt` and `from_str_radix`.
        #[test]
        fn session_ids_read_and_write_as_32_hex_digits(n: u128, text in "[0-9a-fA-F+ x-]{32}") {
            let id = SessionId::from_u128(n);
            proptest::prop_assert_eq!(id.to_string(), format!("{n:032x}"));
            let json = serde_json::to_string(&id).expect("serializes");
            proptest::prop_assert_eq!(json, format!("\"{n:032x}\""));
            proptest::prop_assert_eq!(id.to_string().parse::<SessionId>(), Ok(id));
            let radix = text.bytes().all(|b| b.is_ascii_hexdigit())
                .then(|| u128::from_str_radix(&text, 16).ok()).flatten();
            proptest::prop_assert_eq!(text.parse::<SessionId>().ok(), radix.map(SessionId::from_u128));
        }
    }

    #[test]
    fn session_ids_round_trip_and_refuse_garbage() {
        let id = SessionId::from_u128(0xdead_beef);
        let s = id.to_string();
        assert_eq!(s.len(), 32);
        assert_eq!(s.parse::<SessionId>(), Ok(id));
        for junk in [
            "",
            "xyz",
            "+0000000000000000000000000000001",
            &"f".repeat(33),
        ] {
            assert!(junk.parse::<SessionId>().is_err(), "{junk}");
        }
    }

    #[test]
    fn sightings_keep_distinct_addresses_and_forget_the_stalest() {
        let ip = |n: u8| Some(IpAddr::from([127, 0, 1, n]));
        let mut s = Sightings::new(Sighting {
            ip: ip(0),
            asn: None,
            last: Timestamp::from_secs(0),
        });
        s.sight(ip(0), None, Timestamp::from_secs(1));
        assert_eq!(s.len(), 1);
        for n in 1..40u8 {
            s.sight(ip(n), None, Timestamp::from_secs(u64::from(n) + 1));
        }
        assert_eq!(s.len(), MAX_SIGHTINGS);
        assert!(s.iter().all(|x| x.last >= Timestamp::from_secs(25)));
        assert!(s.iter().any(|x| x.ip == ip(39)));
    }

    #[test]
    fn invalidations_are_counted_inside_the_window_only() {
        let mut a = Account::default();
        let w = Duration::from_secs(60);
        assert_eq!(
            a.record_invalidation(Timestamp::from_secs(0), Reason::IpDrift, w),
            1
        );
        assert_eq!(
            a.record_invalidation(Timestamp::from_secs(30), Reason::IpDrift, w),
            2
        );
        assert_eq!(
            a.record_invalidation(Timestamp::from_secs(75), Reason::IpDrift, w),
            2
        );
    }
}
