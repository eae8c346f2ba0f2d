//! TLS handshakes per second with the ClientHello captured and fingerprinted, against plain rustls, in the same run.
//!
//! Both servers use the same rustls configuration (the target's: a per-run
//! CA, no resumption). The capturing one reads the first ClientHello off
//! the socket, computes JA3 and JA4 and replays the bytes into rustls, as
//! the target's HTTPS listener does. A client with 8 concurrent workers
//! makes full handshakes against each in back-to-back rounds, and the
//! median ratio is printed.
//!
//! Run with `cargo bench --bench tls`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use sessionrange::tls::{HelloRead, Prefixed, TlsMaterial, read_client_hello};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

const WORKERS: usize = 8;
const ROUNDS: usize = 11;
const ROUND_TIME: Duration = Duration::from_millis(1000);
const MAX_PER_ROUND: u64 = 100_000;

/// A TLS server that handshakes and closes; `capture` reads and
/// fingerprints the hello first.
async fn server(tls: &TlsMaterial, capture: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let acceptor = TlsAcceptor::from(tls.server.clone());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                if capture {
                    let HelloRead::Hello(hello) = read_client_hello(&mut stream).await else {
                        return;
                    };
                    let fp = sessionrange::fingerprint::tls(&hello);
                    assert!(fp.is_ok(), "a real hello fingerprints");
                    if let Ok(mut s) = acceptor.accept(Prefixed::new(hello, stream)).await {
                        let _ = s.shutdown().await;
                    }
                } else if let Ok(mut s) = acceptor.accept(stream).await {
                    let _ = s.shutdown().await;
                }
            });
        }
    });
    addr
}

fn connector(tls: &TlsMaterial) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    let der = rustls_pemfile_ca(&tls.ca_pem);
    roots.add(der).expect("the CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// The DER of a one-certificate PEM.
fn rustls_pemfile_ca(pem: &str) -> rustls::pki_types::CertificateDer<'static> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("base64");
    rustls::pki_types::CertificateDer::from(der)
}

/// Full handshakes per second against `addr` for one round.
async fn round(connector: &TlsConnector, addr: SocketAddr) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (connector, done) = (connector.clone(), done.clone());
            tokio::spawn(async move {
                while start.elapsed() < ROUND_TIME && done.load(Ordering::Relaxed) < MAX_PER_ROUND {
                    let tcp = TcpStream::connect(addr).await.expect("connect");
                    let _ = tcp.set_nodelay(true);
                    let name = ServerName::try_from("localhost").expect("a name");
                    let tls = connector.connect(name, tcp).await.expect("handshake");
                    drop(tls);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("worker");
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let tls = TlsMaterial::generate().expect("certificates");
        let (plain, captured) = (server(&tls, false).await, server(&tls, true).await);
        let connector = connector(&tls);
        round(&connector, plain).await;
        round(&connector, captured).await;
        let (mut p, mut c, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let a = round(&connector, plain).await;
            let b = round(&connector, captured).await;
            p.push(a);
            c.push(b);
            ratios.push(b / a);
        }
        let (lo, hi) = (sorted(&ratios)[0], sorted(&ratios)[ROUNDS - 1]);
        let (pm, cm, r) = (sorted(&p)[ROUNDS / 2], sorted(&c)[ROUNDS / 2], sorted(&ratios)[ROUNDS / 2]);
        println!("tls: plain rustls {pm:.0} handshakes/s, with the ClientHello captured {cm:.0} handshakes/s (medians)");
        println!("tls: ratio {r:.3} (median of {ROUNDS} pairs, range {lo:.3} to {hi:.3}; goal >= 0.95), {WORKERS} workers");
    });
}
