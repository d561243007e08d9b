//! A stand-in for a GitHub release's downloads: a small file server on loopback, over HTTPS (a
//! certificate from a fresh test CA, written as PEM for `CURL_CA_BUNDLE`) or plain HTTP, that
//! serves fixed bytes at fixed paths and records every path asked for.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub struct ReleaseServer {
    addr: SocketAddr,
    tls: bool,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
    ca_pem: Option<String>,
}

impl ReleaseServer {
    /// Serves `files` (URL path → bytes) over HTTPS.
    pub fn https(files: BTreeMap<String, Vec<u8>>) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
        // Distinct names: OpenSSL (curl) takes a leaf whose issuer is its own subject for a
        // self-signed certificate.
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "acronis-reports test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
            .expect("test CA");
        let leaf_key = KeyPair::generate().expect("server key");
        let mut leaf_params =
            CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("server params");
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca)
            .expect("server certificate");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .expect("server certificate and key");
        let mut server = Self::start(files, Some(Arc::new(config)));
        server.ca_pem = Some(ca.pem());
        server
    }

    /// Serves `files` (URL path → bytes) over plain HTTP.
    pub fn http(files: BTreeMap<String, Vec<u8>>) -> Self {
        Self::start(files, None)
    }

    fn start(files: BTreeMap<String, Vec<u8>>, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("address");
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let is_tls = tls.is_some();
        let thread = {
            let (stop, requests) = (stop.clone(), requests.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    // A client that gives up (or fails the handshake) ends only its connection.
                    let _ = serve(stream, &files, tls.as_ref(), &requests);
                }
            })
        };
        ReleaseServer {
            addr,
            tls: is_tls,
            stop,
            requests,
            thread: Some(thread),
            ca_pem: None,
        }
    }

    /// `https://127.0.0.1:PORT` (or `http://…`), no trailing slash.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Writes the test CA's certificate (HTTPS only) to `path`, for `CURL_CA_BUNDLE`.
    pub fn write_ca(&self, path: &Path) {
        let pem = self.ca_pem.as_ref().expect("an HTTPS server");
        std::fs::write(path, pem).expect("write CA");
    }

    /// The paths asked for so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for ReleaseServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    tcp: TcpStream,
    files: &BTreeMap<String, Vec<u8>>,
    tls: Option<&Arc<rustls::ServerConfig>>,
    requests: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(10)))?;
    match tls {
        Some(config) => {
            let connection =
                rustls::ServerConnection::new(config.clone()).map_err(std::io::Error::other)?;
            let mut stream = rustls::StreamOwned::new(connection, tcp);
            respond(&mut stream, files, requests)?;
            stream.conn.send_close_notify();
            stream.flush()
        }
        None => {
            let mut stream = tcp;
            respond(&mut stream, files, requests)
        }
    }
}

/// Reads one request's head and answers it: the file, or 404.
fn respond(
    stream: &mut (impl Read + Write),
    files: &BTreeMap<String, Vec<u8>>,
    requests: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > 64 * 1024 {
            return Ok(());
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head
        .lines()
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .unwrap_or("")
        .to_owned();
    requests.lock().unwrap().push(path.clone());
    match files.get(&path) {
        Some(body) => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            stream.write_all(body)?;
        }
        None => {
            stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nNot Found",
            )?;
        }
    }
    stream.flush()
}
