//! A lean HTTP/1.1 client on one keep-alive connection: fixed request bytes out, responses framed by Content-Length in.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use base64::Engine as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The User-Agent every request sends, a current browser's.
pub(crate) const USER_AGENT: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
/// The Accept every request sends.
pub(crate) const ACCEPT: &str = "application/json, */*;q=0.8";

/// Room for response heads, as many as a real server sends.
const MAX_HEADERS: usize = 32;
/// The read buffer a connection starts with; it grows for larger bodies.
const BUFFER: usize = 64 * 1024;

/// A byte stream a connection runs on: TCP, or TLS over TCP.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// How to reach a server: its address, TLS or not, and whether requests
/// go to it as to a forward proxy (absolute URL, Proxy-Authorization).
#[derive(Clone)]
pub(crate) struct Route {
    /// Where connections go (the server, or the proxy).
    pub(crate) addr: SocketAddr,
    /// The Host header: the server's `host:port`.
    pub(crate) host: String,
    /// TLS to the server, trusting its CA; `None` for plain HTTP.
    pub(crate) tls: Option<TlsConnector>,
    /// `user:password` of the forward proxy at `addr`, when it is one.
    pub(crate) proxy_user: Option<String>,
}

/// One request's credential and body, besides the fixed headers.
#[derive(Clone, Copy, Default)]
pub(crate) struct Extra<'a> {
    /// `("Cookie", value)` or `("Authorization", value)`.
    pub(crate) credential: Option<(&'a str, &'a str)>,
    /// `(Content-Type, body)` for a POST.
    pub(crate) body: Option<(&'a str, &'a [u8])>,
}

impl Route {
    /// Plain HTTP straight to `addr`.
    pub(crate) fn plain(addr: SocketAddr) -> Self {
        Self {
            addr,
            host: addr.to_string(),
            tls: None,
            proxy_user: None,
        }
    }

    /// HTTPS to `addr`, trusting the CA certificate `ca_pem`.
    pub(crate) fn tls(addr: SocketAddr, ca_pem: &str) -> Self {
        Self {
            tls: Some(connector(ca_pem)),
            ..Self::plain(addr)
        }
    }

    /// Plain HTTP to `server` through the forward proxy at `proxy`.
    pub(crate) fn proxied(server: SocketAddr, proxy: SocketAddr, user: &str) -> Self {
        Self {
            addr: proxy,
            proxy_user: Some(user.to_owned()),
            ..Self::plain(server)
        }
    }

    /// The request bytes, headers in the order a browser sends them:
    /// Host, (Proxy-Authorization), User-Agent, Accept, the credential,
    /// then Content-Type and Content-Length for a body.
    pub(crate) fn request(&self, method: &str, path: &str, extra: Extra<'_>) -> Vec<u8> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let target = match self.proxy_user {
            Some(_) => format!("{scheme}://{}{path}", self.host),
            None => path.to_owned(),
        };
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {}\r\n", self.host);
        if let Some(user) = &self.proxy_user {
            let basic = base64::engine::general_purpose::STANDARD.encode(user);
            head.push_str(&format!("Proxy-Authorization: Basic {basic}\r\n"));
        }
        head.push_str(&format!("User-Agent: {USER_AGENT}\r\nAccept: {ACCEPT}\r\n"));
        if let Some((name, value)) = extra.credential {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let body = extra.body.map_or(&[][..], |(_, b)| b);
        if let Some((content_type, b)) = extra.body {
            let n = b.len();
            head.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {n}\r\n"
            ));
        }
        head.push_str("\r\n");
        [head.as_bytes(), body].concat()
    }

    /// Opens one connection (TCP_NODELAY, as the servers set it), with
    /// its TLS handshake done.
    pub(crate) async fn connect(&self) -> Conn {
        let tcp = TcpStream::connect(self.addr).await.expect("connect");
        tcp.set_nodelay(true).expect("nodelay");
        let io: Box<dyn Io> = match &self.tls {
            Some(tls) => {
                let name = ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
                Box::new(tls.connect(name, tcp).await.expect("TLS handshake"))
            }
            None => Box::new(tcp),
        };
        Conn {
            io,
            buf: vec![0; BUFFER],
            filled: 0,
        }
    }
}

/// A TLS client that trusts `ca_pem` and offers HTTP/1.1 only.
fn connector(ca_pem: &str) -> TlsConnector {
    let ca = pem::parse(ca_pem).expect("the CA's PEM");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.contents().to_vec()))
        .expect("the CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(config))
}

/// A response; `headers` and `body` are filled only when asked for.
#[derive(Debug, Default)]
pub(crate) struct Response {
    /// The status code.
    pub(crate) status: u16,
    /// Header names (lowercase) and values.
    pub(crate) headers: Vec<(String, String)>,
    /// The body.
    pub(crate) body: Vec<u8>,
}

impl Response {
    /// Every value of the header `name` (lowercase).
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One keep-alive connection and its read buffer.
pub(crate) struct Conn {
    /// The stream, TCP or TLS.
    io: Box<dyn Io>,
    /// Bytes read and not yet consumed, from the start.
    buf: Vec<u8>,
    /// How much of `buf` holds them.
    filled: usize,
}

impl Conn {
    /// Sends `request` and reads its response, keeping headers and body
    /// only when `keep` is true (the load loop keeps nothing and so
    /// allocates nothing).
    pub(crate) async fn send(&mut self, request: &[u8], keep: bool) -> io::Result<Response> {
        self.io.write_all(request).await?;
        self.response(keep).await
    }

    /// Reads the next response: its head with httparse, then exactly
    /// Content-Length bytes of body.
    async fn response(&mut self, keep: bool) -> io::Result<Response> {
        let (mut r, head, length) = loop {
            if let Some(parsed) = self.head(keep) {
                break parsed;
            }
            self.fill().await?;
        };
        let end = head + length;
        if end > self.buf.len() {
            self.buf.resize(end, 0);
        }
        while self.filled < end {
            self.fill().await?;
        }
        if keep {
            r.body = self.buf[head..end].to_vec();
        }
        self.buf.copy_within(end..self.filled, 0);
        self.filled -= end;
        Ok(r)
    }

    /// The response head if it is all in the buffer: the response, the
    /// head's length and the body's.
    fn head(&mut self, keep: bool) -> Option<(Response, usize, usize)> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut headers);
        let head = match parsed
            .parse(&self.buf[..self.filled])
            .expect("a response head")
        {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => return None,
        };
        let mut r = Response {
            status: parsed.code.expect("a status"),
            ..Response::default()
        };
        let mut length = None;
        for h in parsed.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                let text = std::str::from_utf8(h.value).expect("ascii length");
                length = Some(text.trim().parse::<usize>().expect("a length"));
            }
            if keep {
                let value = String::from_utf8_lossy(h.value).into_owned();
                r.headers.push((h.name.to_ascii_lowercase(), value));
            }
        }
        let length = length.unwrap_or_else(|| {
            let bodiless = matches!(r.status, 204 | 304);
            assert!(
                bodiless,
                "no Content-Length: chunked bodies are not read here"
            );
            0
        });
        Some((r, head, length))
    }

    /// Reads more bytes into the buffer, growing it when full.
    async fn fill(&mut self) -> io::Result<()> {
        if self.filled == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = self.io.read(&mut self.buf[self.filled..]).await?;
        if n == 0 {
            let closed = "the server closed the connection";
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, closed));
        }
        self.filled += n;
        Ok(())
    }
}
