//! Built-in simulator of the Acronis Account Management API v2 report endpoints.
//!
//! It serves `/api/2/idp/token`, `/api/2/reports...`, `/api/2/clients/{id}` and
//! `/api/2/tenants/...` on loopback so the tool
//! can be tried without credentials and so end-to-end tests can run the real
//! binary against it with injected faults (see [`Scenario`]). Behaviour follows
//! the vendor docs, the vendor's generated client (stored statuses `in_progress`, `saved`,
//! `failed`) and `report-content.md`; where they are silent (error bodies, the SKU column's
//! name, column order) it makes a documented, plausible choice, offers the alternatives as
//! scenario knobs, and stays strict.
//!
//! Report files are deterministic: the same request against two sandboxes
//! yields byte-identical downloads. Only ids and timestamps are random/live.
//!
//! `GET /_sandbox/stats` (no auth) returns [`Stats`] as JSON for tests that run
//! the sandbox as a separate process.

#![warn(missing_docs)]

mod content;
mod scenario;
mod server;
mod validate;

#[cfg(test)]
mod tests;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::serve::ListenerExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use scenario::{
    ComputePointsItem, ContentKnobs, Endpoint, FaultRule, Hostile, Layout, Scenario,
    TenantBehaviour, TreeTenant,
};

/// What the sandbox has seen so far. Request counters include requests that
/// were rejected (bad auth, validation) or answered with an injected fault.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    /// `POST /idp/token` requests.
    pub token_requests: u64,
    /// `POST /reports` requests.
    pub create_requests: u64,
    /// `GET /reports/{id}/stored` requests.
    pub stored_list_requests: u64,
    /// `GET /reports/{id}/stored/{file}` requests.
    pub download_requests: u64,
    /// `DELETE /reports/{id}` requests.
    pub delete_requests: u64,
    /// `GET /clients/{id}` requests.
    #[serde(default)]
    pub client_requests: u64,
    /// `GET /tenants/{id}` requests.
    #[serde(default)]
    pub tenant_requests: u64,
    /// Requests answered with a fault of the scenario instead of the real answer.
    pub faults_injected: u64,
    /// TCP connections accepted.
    pub connections: u64,
    /// API requests that arrived over HTTP/2 (only a TLS sandbox offers it).
    #[serde(default)]
    pub http2_requests: u64,
    /// Downloads answered gzip-compressed with `Content-Encoding: gzip` (the client asked).
    #[serde(default)]
    pub gzip_downloads: u64,
    /// Every report successfully created, in creation order.
    pub reports: Vec<CreatedReport>,
}

/// A report the sandbox created, as [`Stats`] lists it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreatedReport {
    /// The id the sandbox gave it (random unless the scenario asks for deterministic ids).
    pub id: String,
    /// As the client sent it.
    pub tenant_id: String,
    /// The report's `type` as the client sent it (`usage_current`, `usage_summary`, ...).
    pub kind: String,
    /// The report's `level` as the client sent it (`accounts`, `customers`, ...).
    pub level: String,
    /// The effective period (`usage_current` without a period covers yesterday).
    pub period_start: String,
    pub(crate) period_end: String,
    /// The file formats asked for, as sent.
    pub formats: Vec<String>,
    pub(crate) version: u64,
    /// Whether a `DELETE` removed it.
    pub deleted: bool,
    /// Timeline for benchmarks, in microseconds since the sandbox started: creation.
    #[serde(default)]
    pub created_us: u64,
    /// When its files became `saved` (creation + this report's drawn generation delay).
    #[serde(default)]
    pub ready_us: u64,
    /// `GET /reports/{id}/stored` requests that reached this report (after auth and faults).
    #[serde(default)]
    pub stored_list_requests: u64,
    /// When a `GET /reports/{id}/stored` first answered with its files saved: the client's
    /// polling lag ends here, its own latency until the download starts begins.
    #[serde(default)]
    pub first_saved_list_us: Option<u64>,
    /// When the first download of one of its saved files was accepted.
    #[serde(default)]
    pub first_download_us: Option<u64>,
    /// When the last byte of its most recent complete download was handed to the connection
    /// (for bodies sent whole: when the answer was built).
    #[serde(default)]
    pub download_done_us: Option<u64>,
}

/// Why the sandbox could not start, or its scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The scenario file could not be read.
    #[error("cannot read sandbox scenario {}: {source}", path.display())]
    Read {
        /// The scenario file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The scenario file is not valid YAML for a [`Scenario`].
    #[error("invalid sandbox scenario {}: {message}", path.display())]
    Parse {
        /// The scenario file.
        path: PathBuf,
        /// What the YAML reader said.
        message: String,
    },
    /// The scenario is not valid: YAML given as text that does not parse, or settings that
    /// contradict each other (e.g. a fault rule with neither `status` nor `truncate`).
    #[error("invalid sandbox scenario: {0}")]
    Invalid(String),
    /// The certificate or key of [`TlsIdentity`] was refused by rustls.
    #[error("cannot set up the sandbox's TLS: {0}")]
    Tls(String),
    /// The loopback port could not be bound.
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind {
        /// The port asked for (0: any free one).
        port: u16,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The tenant `GET /api/2/clients/{client_id}` reports for the sandbox's API
/// client: stable per client id, so runs are reproducible.
pub(crate) fn client_tenant_id(client_id: &str) -> String {
    content::derived_uuid(&["client-tenant", client_id])
}

/// A certificate chain and its private key, for [`Sandbox::start_tls`].
pub struct TlsIdentity {
    /// The server certificate first, then any intermediates.
    pub cert_chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// The private key of the first certificate.
    pub key: rustls::pki_types::PrivateKeyDer<'static>,
}

/// A running sandbox server. Dropping it stops accepting connections;
/// [`Sandbox::shutdown`] also waits for the server to wind down.
pub struct Sandbox {
    shared: Arc<server::Shared>,
    addr: SocketAddr,
    scheme: &'static str,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Sandbox {
    /// Bind `127.0.0.1:port` (0 = ephemeral) and serve in a background task.
    /// Must be called inside a tokio runtime.
    pub async fn start(scenario: Scenario, port: u16) -> Result<Sandbox, SandboxError> {
        scenario.validate()?;
        let (listener, addr) = bind(port).await?;
        let shared = Arc::new(server::Shared::new(scenario));
        let counter = shared.clone();
        let listener = listener.tap_io(move |_| {
            counter.connections.fetch_add(1, Ordering::Relaxed);
        });
        let app = server::router(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // A dropped sender also means "stop".
                    let _ = stopped.await;
                })
                .await;
            if let Err(err) = served {
                tracing::warn!("sandbox server stopped with an error: {err}");
            }
        });
        tracing::debug!("sandbox listening on http://{addr}");
        Ok(Sandbox {
            shared,
            addr,
            scheme: "http",
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Like [`Sandbox::start`], but over TLS with `identity`, offering HTTP/2 and HTTP/1.1
    /// through ALPN as a real data centre does: to check that the client takes HTTP/2 when it
    /// is offered. Clients must trust the identity's certificate.
    pub async fn start_tls(
        scenario: Scenario,
        port: u16,
        identity: TlsIdentity,
    ) -> Result<Sandbox, SandboxError> {
        scenario.validate()?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|builder| {
                builder
                    .with_no_client_auth()
                    .with_single_cert(identity.cert_chain, identity.key)
            })
            .map_err(|e| SandboxError::Tls(e.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let (listener, addr) = bind(port).await?;
        let shared = Arc::new(server::Shared::new(scenario));
        let app = server::router(shared.clone());
        let counter = shared.clone();
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let tcp = tokio::select! {
                    _ = &mut stopped => break,
                    accepted = listener.accept() => match accepted {
                        Ok((tcp, _)) => tcp,
                        Err(err) => {
                            tracing::debug!("sandbox: accept failed: {err}");
                            continue;
                        }
                    },
                };
                counter.connections.fetch_add(1, Ordering::Relaxed);
                let (acceptor, app) = (acceptor.clone(), app.clone());
                connections.spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let served = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
                    if let Err(err) = served {
                        tracing::debug!("sandbox: connection ended with an error: {err}");
                    }
                });
                while connections.try_join_next().is_some() {}
            }
        });
        tracing::debug!("sandbox listening on https://{addr}");
        Ok(Sandbox {
            shared,
            addr,
            scheme: "https",
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT` (`https://` for a TLS sandbox), without a trailing slash and
    /// without `/api/2`.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The loopback address the sandbox listens on (with the port picked, if 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The only API client id the token endpoint accepts.
    pub fn client_id(&self) -> &str {
        &self.shared.scenario.client_id
    }

    /// The secret that goes with [`Sandbox::client_id`].
    pub fn client_secret(&self) -> &str {
        &self.shared.scenario.client_secret
    }

    /// A snapshot of the counters and the reports created so far.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Stop accepting, let in-flight requests finish (up to 5 s, since a
    /// multi-GiB padded download could otherwise hold shutdown open), then stop.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

/// A listener on `127.0.0.1:port` (0 = ephemeral) and the address it got.
async fn bind(port: u16) -> Result<(tokio::net::TcpListener, SocketAddr), SandboxError> {
    let bind_error = |source| SandboxError::Bind { port, source };
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    Ok((listener, addr))
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Deliberately no secret.
        f.debug_struct("Sandbox")
            .field("addr", &self.addr)
            .field("client_id", &self.client_id())
            .finish_non_exhaustive()
    }
}
