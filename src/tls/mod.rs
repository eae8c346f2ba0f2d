//! TLS for the target: a CA and a localhost certificate made per run, and the first ClientHello read off the socket.
//!
//! The target terminates TLS itself (rustls, HTTP/1.1 and h2 by ALPN) so
//! that it sees the client's real ClientHello. [`read_client_hello`] reads
//! exactly the records that carry the first ClientHello, with a deadline;
//! the bytes are fingerprinted and then replayed into rustls, which sees
//! the connection as if nothing had read it.

mod hello;
mod prefixed;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::{Error, Result};

pub use hello::{HelloRead, read_client_hello};
pub use prefixed::Prefixed;
pub(crate) use prefixed::forward_async_write;

/// A per-run certificate authority and the server configuration it signs.
#[derive(Clone, Debug)]
pub struct TlsMaterial {
    /// The CA certificate, PEM: what clients must trust.
    pub ca_pem: String,
    /// The rustls configuration of the target's HTTPS listeners.
    pub server: Arc<ServerConfig>,
    /// The server's certificate and key, PEM: what instances sharing a
    /// store hand each other, so a client trusts one CA for all of them.
    pub(crate) server_pem: (String, String),
}

impl TlsMaterial {
    /// Makes a fresh CA and a server certificate for `localhost`,
    /// `127.0.0.1` and `::1`, with ALPN `h2` and `http/1.1` and no session
    /// resumption (no tickets, no cache): every connection makes a full
    /// handshake, so a reconnection never looks like a different client.
    pub fn generate() -> Result<Self> {
        let tls = |e: rcgen::Error| Error::config("tls", format!("cannot make certificates: {e}"));
        let ca_key = KeyPair::generate().map_err(tls)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "sessionrange test CA");
        let ca_cert = ca.self_signed(&ca_key).map_err(tls)?;
        let issuer = Issuer::new(ca, ca_key);
        let leaf_key = KeyPair::generate().map_err(tls)?;
        let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).map_err(tls)?;
        leaf.subject_alt_names.extend([
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ]);
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(tls)?;
        let server_pem = (leaf_cert.pem(), leaf_key.serialize_pem());
        Self::from_pem(ca_cert.pem(), server_pem)
    }

    /// The material of another instance: its CA and its server's
    /// certificate and key, PEM.
    pub fn from_pem(ca_pem: String, server_pem: (String, String)) -> Result<Self> {
        let bad = |what: &str, e: pem::PemError| Error::config("tls", format!("{what}: {e}"));
        let der = |text: &str, what: &str| {
            pem::parse(text)
                .map(|p| p.into_contents())
                .map_err(|e| bad(what, e))
        };
        let leaf = CertificateDer::from(der(&server_pem.0, "server certificate")?);
        let ca = CertificateDer::from(der(&ca_pem, "CA certificate")?);
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der(&server_pem.1, "server key")?));
        let chain = vec![leaf, ca];
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::config("tls", e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| Error::config("tls", e.to_string()))?;
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        server.send_tls13_tickets = 0;
        server.ticketer = Arc::new(NoTickets);
        Ok(Self {
            ca_pem,
            server: Arc::new(server),
            server_pem,
        })
    }

    /// Writes the CA certificate to `path`.
    pub fn write_ca(&self, path: &Path) -> Result<()> {
        std::fs::write(path, &self.ca_pem).map_err(|e| Error::io(path, e))
    }

    /// Writes a bundle of the system's root certificates followed by this
    /// run's CA to `path`, for the variables (`SSL_CERT_FILE`,
    /// `REQUESTS_CA_BUNDLE`, ...) that replace a client's trust store
    /// rather than add to it. Returns how many system roots it holds; a
    /// machine without a readable store gets a bundle of the CA alone.
    pub fn write_bundle(&self, path: &Path) -> Result<usize> {
        let roots = rustls_native_certs::load_native_certs().certs;
        let mut text: String = roots
            .iter()
            .map(|der| pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec())))
            .collect();
        text.push_str(&self.ca_pem);
        std::fs::write(path, text).map_err(|e| Error::io(path, e))?;
        Ok(roots.len())
    }
}

/// A ticketer that issues no tickets: TLS 1.2 resumption stays off too.
#[derive(Debug)]
struct NoTickets;

impl rustls::server::ProducesTickets for NoTickets {
    fn enabled(&self) -> bool {
        false
    }

    fn lifetime(&self) -> u32 {
        0
    }

    fn encrypt(&self, _plain: &[u8]) -> Option<Vec<u8>> {
        None
    }

    fn decrypt(&self, _cipher: &[u8]) -> Option<Vec<u8>> {
        None
    }
}
