//! The network steps before HTTP: which proxy carries the request, name resolution and the TCP
//! connection, each within a short limit.

use std::net::SocketAddr;
use std::time::Duration;

use crate::api::{self, one_line};

/// The proxy variable that carries requests to `url`, if any: loopback never goes through one
/// (the client makes sure), and NO_PROXY may exempt the host.
pub(crate) fn proxy_for(url: &reqwest::Url, variables: &[(String, String)]) -> Option<String> {
    if api::is_loopback(url) {
        return None;
    }
    let get = |names: &[&str]| {
        names.iter().find_map(|name| {
            variables
                .iter()
                .find(|(n, _)| n == name)
                .map(|(n, v)| (n.clone(), v.clone()))
        })
    };
    let host = url
        .host_str()?
        .trim_matches(['[', ']'])
        .to_ascii_lowercase();
    if let Some((_, list)) = get(&["NO_PROXY", "no_proxy"]) {
        let exempt = list.split(',').map(str::trim).any(|entry| {
            let entry = entry.trim_start_matches("*.").trim_start_matches('.');
            let entry = entry.to_ascii_lowercase();
            entry == "*" || host == entry || host.ends_with(&format!(".{entry}"))
        });
        if exempt {
            return None;
        }
    }
    let names: &[&str] = if url.scheme() == "https" {
        &["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
    } else {
        &["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
    };
    get(names).map(|(name, _)| name)
}

/// Why a host could not be reached, as the checklist says it (on one line, capped).
#[derive(Debug, thiserror::Error)]
pub(super) enum NetworkError {
    #[error("no answer from the resolver within {0}s")]
    ResolverSilent(u64),
    #[error("{0}")]
    Resolver(String),
    #[error("the resolver returned no address")]
    NoAddress,
    #[error("no address to try")]
    NothingToTry,
    #[error("{addr}: {reason}")]
    Refused { addr: SocketAddr, reason: String },
    #[error("no connection within {0}s")]
    ConnectSilent(u64),
}

/// Resolves `host` within `limit`.
pub(super) async fn resolve(
    host: &str,
    port: u16,
    limit: Duration,
) -> Result<Vec<SocketAddr>, NetworkError> {
    // An address needs no resolver.
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    match tokio::time::timeout(limit, tokio::net::lookup_host((host, port))).await {
        Err(_) => Err(NetworkError::ResolverSilent(limit.as_secs())),
        Ok(Err(error)) => Err(NetworkError::Resolver(one_line(&error.to_string(), 200))),
        Ok(Ok(addresses)) => {
            let addresses: Vec<SocketAddr> = addresses.collect();
            if addresses.is_empty() {
                Err(NetworkError::NoAddress)
            } else {
                Ok(addresses)
            }
        }
    }
}

/// Connects to the first address that takes a connection, all within `limit`.
pub(super) async fn connect(
    addresses: &[SocketAddr],
    limit: Duration,
) -> Result<SocketAddr, NetworkError> {
    let attempt = async {
        let mut last = NetworkError::NothingToTry;
        for addr in addresses {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(_) => return Ok(*addr),
                Err(error) => {
                    last = NetworkError::Refused {
                        addr: *addr,
                        reason: one_line(&error.to_string(), 120),
                    }
                }
            }
        }
        Err(last)
    };
    tokio::time::timeout(limit, attempt)
        .await
        .unwrap_or(Err(NetworkError::ConnectSilent(limit.as_secs())))
}
