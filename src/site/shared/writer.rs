//! Conditional writes of many sessions, one Redis call per batch.
//!
//! Every request ends with a conditional write of its session. Sent one
//! by one, each is a command of its own for the client library and for
//! Redis. The writer takes every write waiting when it is free and sends
//! them as one call of one script, which checks and applies each group in
//! turn and answers, group by group, which went through. A group that
//! meets a moved version fails alone; its request reads and decides again.

use redis::Script;
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};

use super::{Unavailable, Write};

/// The most groups one call carries.
const MAX_BATCH: usize = 256;

/// Applies groups of writes, each all or nothing: for each group, ARGV
/// holds its key count, then for each key the version it was read at
/// (`0`: absent), a time to live in milliseconds (`0`: none), the value
/// (empty: only check the version), and what a new session keeps beside
/// it, written once at login: its birth context, a NUL, its account name
/// (empty: none; compact JSON never holds a raw NUL). Answers 1 or 0 per
/// group.
const CAS: &str = r"
local out = {}
local k, a = 1, 2
for g = 1, tonumber(ARGV[1]) do
  local n = tonumber(ARGV[a])
  a = a + 1
  local ok = 1
  for i = 0, n - 1 do
    local v = redis.call('HGET', KEYS[k + i], 'v') or '0'
    if v ~= ARGV[a + i * 4] then ok = 0 break end
  end
  if ok == 1 then
    for i = 0, n - 1 do
      local key, b = KEYS[k + i], a + i * 4
      if ARGV[b + 2] ~= '' then
        redis.call('HSET', key, 'v', tonumber(ARGV[b]) + 1, 'd', ARGV[b + 2])
        if tonumber(ARGV[b + 1]) > 0 then redis.call('PEXPIRE', key, ARGV[b + 1]) end
        local born = ARGV[b + 3]
        if born ~= '' then
          local z = string.find(born, '\0', 1, true)
          redis.call('HSET', key, 'b', string.sub(born, 1, z - 1), 'a', string.sub(born, z + 1))
        end
      end
    end
  end
  out[g] = ok
  k, a = k + n, a + n * 4
end
return out
";

/// One group of writes and who waits for its answer.
struct Job {
    writes: Vec<Write>,
    done: oneshot::Sender<Result<bool, Unavailable>>,
}

/// The handle of the writer task of one store connection.
#[derive(Clone, Debug)]
pub(crate) struct Writer {
    tx: mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Starts the writer task on `conn`; it ends when every handle is gone.
    pub(crate) fn start(conn: ConnectionManager) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(conn, rx));
        Self { tx }
    }

    /// Writes `writes` if none of them moved since read; `false` if one did.
    pub(crate) async fn write(&self, writes: Vec<Write>) -> Result<bool, Unavailable> {
        if writes.is_empty() {
            return Ok(true);
        }
        let (done, answer) = oneshot::channel();
        let gone = || Unavailable("the store's writer stopped".into());
        self.tx.send(Job { writes, done }).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// Sends what waits, as one call, until every handle is gone.
async fn run(mut conn: ConnectionManager, mut rx: mpsc::UnboundedReceiver<Job>) {
    let script = Script::new(CAS);
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let answers = call(&script, &mut conn, &jobs).await;
        for (i, job) in jobs.drain(..).enumerate() {
            let answer = match &answers {
                Ok(each) => Ok(each.get(i) == Some(&1)),
                Err(e) => Err(e.clone()),
            };
            let _ = job.done.send(answer);
        }
    }
}

/// One call of the script for `jobs`: each group's answer. The command
/// is built by hand, every argument into one buffer (the client's script
/// invocation copies each into a buffer of its own, twice), and the
/// script is loaded when Redis does not know it yet.
async fn call(
    script: &Script,
    conn: &mut ConnectionManager,
    jobs: &[Job],
) -> Result<Vec<i64>, Unavailable> {
    let keys: usize = jobs.iter().map(|j| j.writes.len()).sum();
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(script.get_hash()).arg(keys);
    for w in jobs.iter().flat_map(|j| &j.writes) {
        cmd.arg(&*w.key);
    }
    cmd.arg(jobs.len());
    for job in jobs {
        cmd.arg(job.writes.len());
        for w in &job.writes {
            let ttl = w.ttl.map_or(0, |t| t.as_millis().max(1)) as u64;
            let born = w.born.as_deref().unwrap_or_default();
            cmd.arg(w.read_at).arg(ttl).arg(&w.value).arg(born);
        }
    }
    match cmd.query_async(conn).await {
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            script.prepare_invoke().load_async(conn).await?;
            Ok(cmd.query_async(conn).await?)
        }
        answered => Ok(answered?),
    }
}
