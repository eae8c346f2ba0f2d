//! A real `redis-server` (Debian's) on a loopback port of its own: by
//! default with an append-only file synced on every write, so that a
//! restart keeps what was written; without persistence for the bench.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running Redis; stopped, and its directory removed, on drop.
pub(crate) struct Redis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    durable: bool,
}

impl Redis {
    /// Starts one, or `None` when `redis-server` is not installed and
    /// SESSIONRANGE_REQUIRE_REDIS is not `1`.
    pub(crate) fn start(label: &str) -> Option<Self> {
        Self::start_with(label, true)
    }

    /// [`Redis::start`], keeping its data on disk (`durable`) or in memory only.
    pub(crate) fn start_with(label: &str, durable: bool) -> Option<Self> {
        let installed = Command::new("redis-server")
            .arg("--version")
            .output()
            .is_ok();
        let required = std::env::var("SESSIONRANGE_REQUIRE_REDIS").is_ok_and(|v| v == "1");
        assert!(installed || !required, "redis-server is required here");
        if !installed {
            eprintln!("redis-server is not installed: skipped");
            return None;
        }
        let dir =
            std::env::temp_dir().join(format!("sessionrange-redis-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a directory for redis");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut redis = Self {
            child: None,
            port,
            dir,
            durable,
        };
        redis.resume();
        Some(redis)
    }

    /// The URL of database 0.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// CPU seconds the server has used so far (Linux's `/proc`; 0 elsewhere).
    #[allow(dead_code, reason = "only the load bench reads it")]
    pub(crate) fn cpu_seconds(&self) -> f64 {
        let Some(pid) = self.child.as_ref().map(Child::id) else {
            return 0.0;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // utime and stime are the 14th and 15th fields, in clock ticks
        // (100 a second); the command before them may hold spaces.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // `rest` starts at the 3rd field, the state.
        (ticks(14 - 3) + ticks(15 - 3)) / 100.0
    }

    /// Kills the server at once, as a crash would.
    pub(crate) fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and data, and waits until it
    /// answers (10 s at most).
    pub(crate) fn resume(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--appendonly", if self.durable { "yes" } else { "no" }])
            .args(["--appendfsync", "always", "--save", ""])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
