//! The shared store on Redis: what several target instances must agree on.
//!
//! Every record the engine decides on (a session, an account's standing,
//! a client address's login standing, a refresh-token family) is a Redis
//! hash holding a version `v` and the serialized value `d`. An instance
//! loads the records, lets the pure engine decide, and writes back with
//! one Lua script that first checks that no version moved: if one did,
//! another instance decided in between, and this one loads and decides
//! again. Nothing is lost and nothing is applied twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::session::SessionId;

mod batch;
mod engine_state;
mod keys;
mod tokens;
mod writer;

pub use keys::SharedKeys;

/// How many times a decision is taken again when another instance wrote
/// one of its records first, before the request is refused as unjudged.
const MAX_TRIES: usize = 64;

/// What every key of the shared store starts with, unless a run asks for
/// a namespace of its own.
pub const DEFAULT_NAMESPACE: &str = "sr:";

/// The store could not be reached or read: the request was not judged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the shared session store is unavailable ({0})")]
pub struct Unavailable(pub String);

impl From<RedisError> for Unavailable {
    fn from(e: RedisError) -> Self {
        Self(format!("redis: {e}"))
    }
}

impl From<serde_json::Error> for Unavailable {
    fn from(e: serde_json::Error) -> Self {
        Self(format!("a stored record does not read back: {e}"))
    }
}

impl From<postcard::Error> for Unavailable {
    fn from(e: postcard::Error) -> Self {
        Self(format!("a stored session does not read back: {e}"))
    }
}

/// A field read as bytes, as text: every field but a session's live
/// state is UTF-8.
fn text(field: Option<Vec<u8>>) -> Result<Option<String>, Unavailable> {
    let Some(bytes) = field else {
        return Ok(None);
    };
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| Unavailable("a stored record is not text".into()))
}

/// A failure to reach the store at `url`, for the field that names it.
/// A server that answers in another protocol (a web server or another
/// database on the port) is a parse error to the client library; say what
/// it means.
fn unreachable(url: &str, e: &RedisError) -> crate::Error {
    let problem = match e.kind() {
        redis::ErrorKind::Parse => format!("does not answer as a Redis server does ({e})"),
        _ => e.to_string(),
    };
    crate::Error::config("target.store", format!("{url}: {problem}"))
}

/// A connection to the shared store, with its scripts.
#[derive(Clone)]
pub struct SharedStore {
    conn: ConnectionManager,
    url: String,
    prefix: String,
    load: Script,
    writer: writer::Writer,
    /// This instance's requests waiting for their sessions.
    queues: Arc<batch::Queues>,
    /// The records of sessions this instance wrote last, with their
    /// versions: the next batch writes against them without reading
    /// first, and reads only when another instance wrote in between.
    cache: Arc<Mutex<HashMap<SessionId, engine_state::Held>>>,
}

impl std::fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedStore")
            .field("url", &self.url)
            .finish()
    }
}

/// Loads a session and its account's standing in one round trip:
/// `{v, d, birth, account, account v, account d}`, or nothing.
const LOAD: &str = r"
local s = redis.call('HMGET', KEYS[1], 'v', 'd', 'b', 'a')
if not s[1] or not s[4] then return {} end
local a = redis.call('HMGET', ARGV[1] .. s[4], 'v', 'd')
return {s[1], s[2], s[3], s[4], a[1] or '0', a[2] or ''}
";

/// One record to write back, with the version it was read at.
pub(super) struct Write {
    key: Arc<str>,
    read_at: u64,
    value: Vec<u8>,
    ttl: Option<Duration>,
    /// A new session's birth context, a NUL and its account name.
    born: Option<String>,
}

impl Write {
    /// `value` under `key`, read at `read_at`.
    fn of<T: Serialize>(
        key: impl Into<Arc<str>>,
        read_at: u64,
        value: &T,
    ) -> Result<Self, Unavailable> {
        Ok(Self::bytes(key.into(), read_at, serde_json::to_vec(value)?))
    }

    /// `value`, already encoded, under `key`, read at `read_at`.
    fn bytes(key: Arc<str>, read_at: u64, value: Vec<u8>) -> Self {
        Self {
            key,
            read_at,
            value,
            ttl: None,
            born: None,
        }
    }

    /// A check that `key` is still at version `read_at`, writing nothing.
    fn guard(key: Arc<str>, read_at: u64) -> Self {
        Self::bytes(key, read_at, Vec::new())
    }

    fn expiring(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }
}

/// A record read with its version (0 when absent).
#[derive(Clone, Debug)]
struct Versioned<T> {
    version: u64,
    value: Option<T>,
}

impl<T: DeserializeOwned> Versioned<T> {
    /// Reads a record from its `v` and `d` fields.
    fn read(v: Option<String>, d: Option<String>) -> Result<Self, Unavailable> {
        let version = version_of(v.as_deref())?;
        let value = match d.as_deref() {
            None | Some("") => None,
            Some(d) => Some(serde_json::from_str(d)?),
        };
        Ok(Self { version, value })
    }
}

impl SharedStore {
    /// Connects to the Redis at `url` (`redis://HOST:PORT/DB`), keeping
    /// every key under `namespace`. Fails when it cannot be reached now;
    /// later outages are met by reconnecting.
    pub async fn connect(url: &str, namespace: &str) -> crate::Result<Self> {
        let fail = |e: RedisError| unreachable(url, &e);
        let client = redis::Client::open(url).map_err(fail)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(fail)?;
        let writer = writer::Writer::start(conn.clone());
        Ok(Self {
            conn,
            url: url.to_owned(),
            prefix: namespace.to_owned(),
            load: Script::new(LOAD),
            writer,
            queues: Arc::default(),
            cache: Arc::default(),
        })
    }

    /// The store's address, as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The key `rest` in this store's namespace.
    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    /// The key `kind` `name` in this store's namespace, such as `s2:` and
    /// a session id, in one allocation.
    fn keyed(&self, kind: &str, name: &dyn std::fmt::Display) -> String {
        use std::fmt::Write as _;
        let mut key = String::with_capacity(self.prefix.len() + kind.len() + 40);
        key.push_str(&self.prefix);
        key.push_str(kind);
        let _ = write!(key, "{name}");
        key
    }

    /// Forgets every key of this store's namespace, keys included: what a
    /// run that is over leaves.
    pub async fn forget_all(&self) -> Result<(), Unavailable> {
        self.unlink(&self.scan("*").await?).await
    }

    /// Deletes `keys`, a batch at a time.
    async fn unlink(&self, keys: &[String]) -> Result<(), Unavailable> {
        for chunk in keys.chunks(512) {
            let mut conn = self.conn();
            redis::cmd("UNLINK")
                .arg(chunk)
                .query_async::<()>(&mut conn)
                .await?;
        }
        Ok(())
    }

    /// Whether Redis answers a `PING` now.
    pub async fn answers(&self) -> bool {
        let pong: Result<String, RedisError> =
            redis::cmd("PING").query_async(&mut self.conn()).await;
        pong.is_ok_and(|p| p == "PONG")
    }

    /// A connection handle: cheap, and shared by every request.
    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Writes `writes` if none of them moved since read; `false` if one
    /// did. Writes of concurrent requests go to Redis together.
    async fn write(&self, writes: Vec<Write>) -> Result<bool, Unavailable> {
        self.writer.write(writes).await
    }

    /// Reads one versioned record.
    async fn read<T: DeserializeOwned>(&self, key: &str) -> Result<Versioned<T>, Unavailable> {
        let (v, d): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(key)
            .arg("v")
            .arg("d")
            .query_async(&mut self.conn())
            .await?;
        Versioned::read(v, d)
    }

    /// Every key under `pattern` (after the prefix), by SCAN.
    async fn scan(&self, pattern: &str) -> Result<Vec<String>, Unavailable> {
        let mut conn = self.conn();
        let mut cursor = 0u64;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(self.key(pattern))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }
}

/// A record's version from its `v` field (0 when absent).
fn version_of(v: Option<&str>) -> Result<u64, Unavailable> {
    let bad = |_| Unavailable("a stored record has a version that is not a number".into());
    v.map_or(Ok(0), str::parse).map_err(bad)
}

/// Too many other instances won every race for one record.
fn contended(what: &str) -> Unavailable {
    Unavailable(format!(
        "{what} changed under every one of {MAX_TRIES} tries"
    ))
}
