//! Proxy events as they appear in the trace: connections, exits, sticky moves, faults, refusals.
//!
//! The pool writes these lines; the grade and the report read them. The
//! vocabulary they share (an exit and its network, why a sticky session
//! moved, which fault fired) lives here with them.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::geo::GeoDb;
use crate::network::NetworkInfo;

/// One trace line written by the pool: `{"type": "proxy", ...}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProxyEvent {
    /// Always `"proxy"`, so trace readers can tell the lines apart.
    #[serde(rename = "type")]
    pub kind: ProxyTag,
    /// When it happened.
    pub at: Timestamp,
    /// The node: an exit's name, or `gateway`.
    pub node: String,
    /// The client connection, numbered per node from 1.
    pub conn: u64,
    /// What happened.
    #[serde(flatten)]
    pub what: ProxyWhat,
}

/// The `type` tag of proxy lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyTag {
    /// A proxy event.
    #[default]
    Proxy,
}

/// What a proxy node did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ProxyWhat {
    /// A client connected.
    Connect {
        /// The client's socket address.
        client: SocketAddr,
    },
    /// A connection's requests go out from this exit from now on.
    ExitChosen {
        /// The exit.
        exit: ExitInfo,
        /// The sticky session id, if the username asked for one.
        sticky: Option<String>,
    },
    /// A sticky session kept its exit on a new connection.
    StickyRenewed {
        /// The sticky session id.
        session: String,
        /// Its exit.
        exit: ExitInfo,
    },
    /// A sticky session silently moved to another exit.
    StickyRotated {
        /// The sticky session id.
        session: String,
        /// Why it moved.
        cause: RotateCause,
        /// The old exit.
        from: ExitInfo,
        /// The new exit.
        to: ExitInfo,
    },
    /// A CONNECT tunnel to the target opened.
    Tunnel {
        /// The authority the client asked for.
        to: String,
    },
    /// A scripted fault fired.
    Fault {
        /// Which.
        fault: FaultKind,
        /// Specifics, such as the delay or the banned address.
        detail: String,
    },
    /// The proxy refused a request itself.
    Refused {
        /// The status it answered.
        status: u16,
        /// Why.
        reason: String,
    },
}

impl ProxyEvent {
    /// An event of `node` on connection `conn`.
    pub fn new(at: Timestamp, node: &str, conn: u64, what: ProxyWhat) -> Self {
        Self {
            kind: ProxyTag::Proxy,
            at,
            node: node.to_owned(),
            conn,
            what,
        }
    }

    /// One sentence for people and reports, such as "gateway: sticky
    /// session s1 outlived its sticky TTL and moved from 127.0.1.20
    /// (AS7922, residential) to 127.0.2.20 (AS16509, datacenter)".
    pub fn describe(&self) -> String {
        let what = match &self.what {
            ProxyWhat::Connect { client } => format!("connection {} from {client}", self.conn),
            ProxyWhat::ExitChosen { exit, sticky: None } => {
                format!("connection {} goes out from {exit}", self.conn)
            }
            ProxyWhat::ExitChosen {
                exit,
                sticky: Some(s),
            } => format!("sticky session {s} starts on {exit}"),
            ProxyWhat::StickyRenewed { session, exit } => {
                format!("sticky session {session} keeps {exit}")
            }
            ProxyWhat::StickyRotated {
                session,
                cause,
                from,
                to,
            } => {
                let why = match cause {
                    RotateCause::StickyTtl => "outlived its sticky TTL",
                    RotateCause::IdleTtl => "sat idle past its idle TTL",
                };
                format!("sticky session {session} {why} and moved from {from} to {to}")
            }
            ProxyWhat::Tunnel { to } => format!("connection {} tunnels to {to}", self.conn),
            ProxyWhat::Fault { fault, detail } => {
                format!("fault `{}` fired: {detail}", fault.as_str())
            }
            ProxyWhat::Refused { status, reason } => format!("answered {status}: {reason}"),
        };
        format!("{}: {what}", self.node)
    }

    /// Parses a trace line; `None` if it is not a proxy event.
    pub fn parse(line: &str) -> Option<Self> {
        serde_json::from_str(line).ok()
    }
}

/// An exit address and the network the target will see behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// The address sent in the PROXY header.
    pub ip: IpAddr,
    /// Its ASN, organisation, class and country.
    pub network: NetworkInfo,
}

impl ExitInfo {
    /// Looks `ip` up in `geo`.
    pub fn lookup(ip: IpAddr, geo: &GeoDb) -> Self {
        Self {
            ip,
            network: geo.lookup(ip),
        }
    }
}

impl std::fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.network.asn {
            Some(asn) => write!(f, "{} (AS{asn}, {})", self.ip, self.network.class),
            None => write!(f, "{} (unknown network)", self.ip),
        }
    }
}

/// Why a sticky session moved to another exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RotateCause {
    /// It outlived the sticky TTL.
    StickyTtl,
    /// It went unused for the idle TTL.
    IdleTtl,
}

/// What a fault does once it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// The proxy stops listening: connection refused from then on.
    Dies,
    /// The proxy accepts, reads, and never answers.
    Hangs,
    /// Every request waits `latency` ± `jitter` before it is forwarded.
    Latency,
    /// The proxy sends at most `bytes_per_sec` to the client.
    Bandwidth,
    /// The connection is reset (TCP RST) after `after_bytes` sent to the client.
    Reset,
    /// The proxy answers 407 Proxy Authentication Required.
    #[serde(rename = "auth-407")]
    Auth407,
    /// The proxy answers 502 Bad Gateway to CONNECT (and to plain requests).
    #[serde(rename = "connect-502")]
    Connect502,
    /// The target bans the exit address: 403 for that IP from then on.
    Banned,
}

impl FaultKind {
    /// The name used in scenario files and the trace.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dies => "dies",
            Self::Hangs => "hangs",
            Self::Latency => "latency",
            Self::Bandwidth => "bandwidth",
            Self::Reset => "reset",
            Self::Auth407 => "auth-407",
            Self::Connect502 => "connect-502",
            Self::Banned => "banned",
        }
    }

    /// Whether the fault only makes sense per connection (at accept).
    pub fn per_connection(self) -> bool {
        matches!(self, Self::Bandwidth | Self::Reset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_their_trace_line() {
        let exit = |ip: &str| ExitInfo {
            ip: ip.parse().expect("ip"),
            network: NetworkInfo::unknown(),
        };
        let e = ProxyEvent::new(
            Timestamp::from_secs(5),
            "gateway",
            3,
            ProxyWhat::StickyRotated {
                session: "s1".into(),
                cause: RotateCause::StickyTtl,
                from: exit("127.0.1.5"),
                to: exit("127.0.2.9"),
            },
        );
        let line = serde_json::to_string(&e).expect("serializes");
        assert!(line.starts_with("{\"type\":\"proxy\""), "{line}");
        assert!(line.contains("\"event\":\"sticky_rotated\""), "{line}");
        assert_eq!(ProxyEvent::parse(&line), Some(e.clone()));
        assert_eq!(
            e.describe(),
            "gateway: sticky session s1 outlived its sticky TTL and moved from \
             127.0.1.5 (unknown network) to 127.0.2.9 (unknown network)"
        );
        assert_eq!(ProxyEvent::parse("{\"type\":\"decision\"}"), None);
    }
}
