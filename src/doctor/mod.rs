//! `doctor`: a preflight of everything a run needs, said as a checklist a user can act on.
//!
//! In order: the job file (when one is given) reads; the data-center URL is well formed; its
//! host resolves and takes a TCP connection; TLS completes with a trusted certificate; the
//! server answers like the API; the credentials are accepted; the API client's own tenant, each
//! tenant the job lists and each `children_of` root are visible. With `create_test_report`, one
//! small report is created, polled, downloaded into a temporary folder, its SKU column checked,
//! and deleted. Nothing else is created or written.
//!
//! Every network step has a short timeout and no retries: a wrong URL is said within seconds.
//! A check that cannot run because an earlier one failed is recorded as skipped. Nothing here
//! prints; [`render`] turns the [`Report`] into lines or JSON.

mod model;
mod network;
mod render;
mod tenants;
mod test_report;
#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::api::{self, ApiError, Client, ClientOptions, Credentials, TenantInfo, one_line};
use crate::job::{self};
use crate::secret::Secret;

pub use model::*;
pub(crate) use network::proxy_for;
use network::*;
pub use render::{render_json, render_text, summary};
use tenants::*;
use test_report::*;

/// What to do about a URL that names no (reachable) API, naming where it was read from.
fn url_hint(source: UrlSource) -> String {
    let also = match source {
        UrlSource::Environment => "",
        UrlSource::Flag => " (it wins over ACRONIS_BASE_URL)",
        UrlSource::JobFile => " (ACRONIS_BASE_URL is not set)",
    };
    format!(
        "check {}{also}: it must be the data-center URL shown with the API client in the management console (Settings → API clients), e.g. https://eu2-cloud.acronis.com",
        source.as_str()
    )
}

const CLIENT_CREDENTIALS_HINT: &str = "check ACRONIS_CLIENT_ID and ACRONIS_CLIENT_SECRET: the client ID and secret of an API client created in the management console (Settings → API clients), in the data center of ACRONIS_BASE_URL, and that the API client is enabled";
const TOKEN_HINT: &str = "check ACRONIS_TOKEN: it may be wrong or expired (tokens live two hours); or set ACRONIS_CLIENT_ID and ACRONIS_CLIENT_SECRET instead, so tokens are fetched and renewed";

/// The checklist being built.
#[derive(Default)]
struct Checklist {
    checks: Vec<Check>,
}

impl Checklist {
    fn push(&mut self, check: CheckId, status: Verdict, title: &str, detail: String) -> &mut Check {
        self.checks.push(Check {
            check,
            status,
            title: title.to_owned(),
            detail,
            hint: None,
            tenant_id: None,
        });
        let last = self.checks.len() - 1;
        &mut self.checks[last]
    }

    fn pass(&mut self, check: CheckId, title: &str, detail: impl Into<String>) -> &mut Check {
        self.push(check, Verdict::Pass, title, detail.into())
    }

    fn fail(
        &mut self,
        check: CheckId,
        title: &str,
        detail: impl Into<String>,
        hint: impl Into<String>,
    ) -> &mut Check {
        let entry = self.push(check, Verdict::Fail, title, detail.into());
        entry.hint = Some(hint.into());
        entry
    }

    fn skip(&mut self, check: CheckId, title: &str, why: impl Into<String>) {
        self.push(check, Verdict::Skipped, title, why.into());
    }

    /// Records every check in `rest` as skipped because of `why`.
    fn skip_all(&mut self, rest: &[(CheckId, &str)], why: &str) {
        for (check, title) in rest {
            self.skip(*check, title, why);
        }
    }

    fn finish(self, client: Option<&Client>) -> Report {
        let mut checks = self.checks;
        if let Some(client) = client {
            // Server text is repeated here: never a credential, whatever a server echoed.
            for check in &mut checks {
                check.detail = client.scrub(&check.detail);
                check.hint = check.hint.as_deref().map(|h| client.scrub(h));
            }
        }
        Report {
            ok: !checks.iter().any(|c| c.status == Verdict::Fail),
            checks,
        }
    }
}

const T_JOB: &str = "job file";
const T_URL: &str = "data-center URL";
const T_PROXY: &str = "proxy";
const T_DNS: &str = "host resolves";
const T_TCP: &str = "TCP connection";
const T_TLS: &str = "TLS";
const T_API: &str = "API answers";
const T_CREDENTIALS: &str = "credentials";
const T_CLIENT_TENANT: &str = "API client's tenant";
const T_TENANT: &str = "tenant";
const T_CHILDREN: &str = "children_of root";
const T_TEST: &str = "test report";
const T_SKU: &str = "SKU column";
const T_DELETED: &str = "test report deleted";

/// Runs every check and returns what it found. Never fails: a problem is a failed check.
pub async fn examine(options: Options) -> Report {
    let mut list = Checklist::default();
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date();

    let job = match &options.job {
        None => None,
        Some(path) => match job::load(path, today) {
            Ok(job) => {
                list.pass(
                    CheckId::JobFile,
                    T_JOB,
                    format!(
                        "{} is valid: {} tenant(s) by id, {} children_of entr{}",
                        path.display(),
                        job.tenants.len(),
                        job.discoveries.len(),
                        if job.discoveries.len() == 1 {
                            "y"
                        } else {
                            "ies"
                        }
                    ),
                );
                Some(job)
            }
            Err(error) => {
                list.fail(
                    CheckId::JobFile,
                    T_JOB,
                    one_line(&error.to_string(), 300),
                    format!(
                        "`acronis-reports validate {}` shows every problem with its place",
                        path.display()
                    ),
                );
                None
            }
        },
    };

    let network: Vec<(CheckId, &str)> = vec![
        (CheckId::Dns, T_DNS),
        (CheckId::Tcp, T_TCP),
        (CheckId::Tls, T_TLS),
        (CheckId::Api, T_API),
        (CheckId::Credentials, T_CREDENTIALS),
        (CheckId::ClientTenant, T_CLIENT_TENANT),
    ];

    let resolved = resolve_base_url(
        options.base_url.as_deref(),
        options.environment.base_url.as_deref(),
        job.as_ref().and_then(|j| j.base_url.as_deref()),
    );
    let Some((text, source)) = resolved else {
        list.fail(
            CheckId::BaseUrl,
            T_URL,
            "no data-center URL is set",
            "set ACRONIS_BASE_URL (or pass --base-url, or set api.base_url in the job file) to the data-center URL shown with the API client in the management console (Settings → API clients), e.g. https://eu2-cloud.acronis.com",
        );
        list.skip_all(&network, "needs a data-center URL");
        return list.finish(None);
    };
    let base = match api::api_base(&text) {
        Ok(base) => {
            list.pass(
                CheckId::BaseUrl,
                T_URL,
                format!("{} (from {})", api::canonical_base(&base), source.as_str()),
            );
            base
        }
        Err(error) => {
            list.fail(
                CheckId::BaseUrl,
                T_URL,
                error.to_string(),
                format!("this URL was read from {}", source.as_str()),
            );
            list.skip_all(&network, "needs a well-formed data-center URL");
            return list.finish(None);
        }
    };
    let host = base.host_str().unwrap_or_default().to_owned();
    let port = base.port_or_known_default().unwrap_or(443);
    let https = base.scheme() == "https";

    // Name resolution and the TCP connection, unless a proxy does both (said with the first
    // request through it, below).
    let proxy = proxy_for(&base, &options.environment.proxy);
    if proxy.is_none() {
        let step = options.step_timeout;
        let addresses = match resolve(&host, port, step).await {
            Ok(addresses) => {
                let shown: Vec<String> = addresses
                    .iter()
                    .take(3)
                    .map(|a| a.ip().to_string())
                    .collect();
                list.pass(
                    CheckId::Dns,
                    T_DNS,
                    format!("{host} → {}", shown.join(", ")),
                );
                addresses
            }
            Err(why) => {
                list.fail(
                    CheckId::Dns,
                    T_DNS,
                    format!("{host} does not resolve ({why})"),
                    url_hint(source),
                );
                list.skip_all(&network[1..], "needs a host that resolves");
                return list.finish(None);
            }
        };
        match connect(&addresses, step).await {
            Ok(addr) => {
                list.pass(CheckId::Tcp, T_TCP, format!("connected to {addr}"));
            }
            Err(why) => {
                list.fail(
                    CheckId::Tcp,
                    T_TCP,
                    format!("cannot connect to {host} port {port} ({why})"),
                    format!(
                        "check the port in the URL, and that a firewall lets this machine reach {host}:{port} (set HTTPS_PROXY if it must go through a proxy); {}",
                        url_hint(source)
                    ),
                );
                list.skip_all(&network[2..], "needs a TCP connection");
                return list.finish(None);
            }
        }
    }

    // From here on, the client `run` uses, with short limits and no retries.
    let credentials = credentials_of(&options.environment);
    let client_options = ClientOptions {
        request_timeout: options.step_timeout + Duration::from_secs(1),
        connect_timeout: options.step_timeout,
        read_timeout: Duration::from_secs(30),
        max_attempts: 1,
        ..ClientOptions::default()
    };
    let probe_credentials = match &credentials {
        Ok(credentials) => credentials.clone(),
        // The probe sends none; the client still needs something to hold.
        Err(_) => Credentials::Token(Secret::new("")),
    };
    let mut client = match Client::new(base.clone(), probe_credentials, client_options) {
        Ok(client) => client,
        Err(error) => {
            list.fail(
                CheckId::Tls,
                T_TLS,
                error.to_string(),
                "the HTTP client could not be set up on this machine",
            );
            list.skip_all(&network[3..], "needs the HTTP client");
            return list.finish(None);
        }
    };
    if let Some(hook) = &options.on_new_secret {
        for secret in client.derived_secrets() {
            hook(&secret);
        }
        client = client.on_new_secret(hook.clone());
    }

    let probed = client.probe().await;
    if let Some(variable) = &proxy {
        match &probed {
            Err(failure)
                if failure.connecting
                    && !matches!(
                        failure.error,
                        ApiError::UntrustedCertificate { .. } | ApiError::NotTls { .. }
                    ) =>
            {
                list.fail(
                    CheckId::Proxy,
                    T_PROXY,
                    format!(
                        "requests go through the proxy in {variable}, and did not get through it to {host}: {}",
                        failure.error
                    ),
                    format!(
                        "check {variable} (and NO_PROXY): the proxy must be reachable and let this machine reach {host}:{port}; {}",
                        url_hint(source)
                    ),
                );
                list.skip_all(&network[2..], "needs a connection through the proxy");
                return list.finish(Some(&client));
            }
            _ => {
                list.pass(
                    CheckId::Proxy,
                    T_PROXY,
                    format!(
                        "requests go through the proxy in {variable}; it resolves {host} and connects"
                    ),
                );
            }
        }
    }
    match probed {
        Ok(answer) => {
            if https {
                list.pass(
                    CheckId::Tls,
                    T_TLS,
                    format!("handshake with {host} done, its certificate is trusted"),
                );
            }
            // The API refuses a request without credentials, in JSON; whether its 401 body is
            // always JSON is not documented, so a 401 counts whatever its body.
            if (answer.json && answer.status < 500) || answer.status == 401 {
                list.pass(
                    CheckId::Api,
                    T_API,
                    format!(
                        "an unauthenticated request got the API's answer (HTTP {}{})",
                        answer.status,
                        if answer.json { ", JSON" } else { "" }
                    ),
                );
            } else if answer.json {
                list.fail(
                    CheckId::Api,
                    T_API,
                    format!(
                        "the API answered HTTP {}: {}",
                        answer.status, answer.described
                    ),
                    "the data center has trouble; try again later, or see the Acronis status page",
                );
                list.skip_all(&network[4..], "needs the API");
                return list.finish(Some(&client));
            } else {
                list.fail(
                    CheckId::Api,
                    T_API,
                    format!(
                        "{host} answered HTTP {} with {} instead of the API's JSON: {}",
                        answer.status,
                        answer.content_type.as_deref().unwrap_or("no content type"),
                        answer.described
                    ),
                    format!(
                        "this is not the Acronis API (a web page, a proxy or a captive portal?); check HTTPS_PROXY/NO_PROXY; {}",
                        url_hint(source)
                    ),
                );
                list.skip_all(&network[4..], "needs the API");
                return list.finish(Some(&client));
            }
        }
        Err(failure) => {
            let (check, title, detail, hint) = match &failure.error {
                ApiError::HostNotFound { host, message, .. } => (
                    CheckId::Dns,
                    T_DNS,
                    format!("{host} does not resolve ({message})"),
                    url_hint(source),
                ),
                ApiError::NotTls {
                    origin, message, ..
                } => {
                    let fix = if api::is_loopback(&base) {
                        format!(
                            "for a plain-HTTP server on loopback (the sandbox) write http://{host}:{port}"
                        )
                    } else {
                        "use the data center's https:// address, without a port".to_owned()
                    };
                    (
                        CheckId::Tls,
                        T_TLS,
                        format!(
                            "the server at {origin} does not speak TLS, it answers like a plain-HTTP server ({message})"
                        ),
                        format!("{fix}; {}", url_hint(source)),
                    )
                }
                ApiError::UntrustedCertificate { message, .. } => (
                    CheckId::Tls,
                    T_TLS,
                    format!("the certificate of {host} is not trusted ({message})"),
                    format!(
                        "if a proxy inspects TLS on this network, point SSL_CERT_FILE at its CA certificate (PEM); otherwise the URL may name the wrong host: {}",
                        url_hint(source)
                    ),
                ),
                error if failure.connecting && https => (
                    CheckId::Tls,
                    T_TLS,
                    error.to_string(),
                    format!(
                        "the TLS handshake with {host} failed; check the network path (a proxy?); {}",
                        url_hint(source)
                    ),
                ),
                error => (
                    CheckId::Api,
                    T_API,
                    error.to_string(),
                    format!(
                        "no usable answer within {}s; check the network path (HTTPS_PROXY/NO_PROXY) and try again; {}",
                        client_options.request_timeout.as_secs(),
                        url_hint(source)
                    ),
                ),
            };
            list.fail(check, title, detail, hint);
            // Whatever comes after the failed check (TLS only for https).
            let failed_at = network.iter().position(|(id, _)| *id == check).unwrap_or(0);
            let rest: Vec<(CheckId, &str)> = network[(failed_at + 1).max(2)..]
                .iter()
                .filter(|(id, _)| https || *id != CheckId::Tls)
                .copied()
                .collect();
            list.skip_all(&rest, "needs an answer from the API");
            return list.finish(Some(&client));
        }
    }

    // Credentials.
    let credentials = match credentials {
        Ok(credentials) => credentials,
        Err((detail, hint)) => {
            list.fail(CheckId::Credentials, T_CREDENTIALS, detail, hint);
            list.skip(CheckId::ClientTenant, T_CLIENT_TENANT, "needs credentials");
            return list.finish(Some(&client));
        }
    };
    let (accepted, hint) = match &credentials {
        Credentials::Client { .. } => (client.authenticate().await, CLIENT_CREDENTIALS_HINT),
        Credentials::Token(_) => (client.check_credentials().await, TOKEN_HINT),
    };
    let what = match &credentials {
        Credentials::Client { .. } => "ACRONIS_CLIENT_ID and ACRONIS_CLIENT_SECRET",
        Credentials::Token(_) => "ACRONIS_TOKEN",
    };
    match accepted {
        Ok(()) => {
            let how = match &credentials {
                Credentials::Client { .. } => "got a token (POST /api/2/idp/token)",
                Credentials::Token(_) => "accepted by an authenticated read",
            };
            list.pass(
                CheckId::Credentials,
                T_CREDENTIALS,
                format!("{what}: {how}"),
            );
        }
        Err(error) => {
            let detail = match &error {
                ApiError::AuthRefused { status, reason } => {
                    format!("the server refused {what} (HTTP {status}: {reason})")
                }
                other => format!("could not check {what}: {other}"),
            };
            list.fail(CheckId::Credentials, T_CREDENTIALS, detail, hint);
            list.skip(
                CheckId::ClientTenant,
                T_CLIENT_TENANT,
                "needs accepted credentials",
            );
            return list.finish(Some(&client));
        }
    }

    // The API client's own tenant: where its view of the tree starts.
    let client_id = match &credentials {
        Credentials::Client { id, .. } => Some(id.clone()),
        Credentials::Token(_) => options.environment.client_id.clone(),
    };
    let own_tenant = match client_id {
        None => {
            list.skip(
                CheckId::ClientTenant,
                T_CLIENT_TENANT,
                "ACRONIS_TOKEN without ACRONIS_CLIENT_ID: set the API client's id to check its tenant",
            );
            None
        }
        Some(id) => match client.client_info(&id).await {
            Ok(info) => {
                let tenant = client.tenant(&info.tenant_id).await.ok();
                let disabled = info.enabled == Some(false);
                let detail = format!(
                    "the API client belongs to {}{}",
                    describe_tenant(&info.tenant_id, tenant.as_ref()),
                    if disabled {
                        "; the API client is disabled"
                    } else {
                        ""
                    }
                );
                if disabled {
                    list.fail(
                        CheckId::ClientTenant,
                        T_CLIENT_TENANT,
                        detail,
                        "enable the API client in the management console (Settings → API clients)",
                    );
                } else {
                    list.pass(CheckId::ClientTenant, T_CLIENT_TENANT, detail);
                }
                Some((info.tenant_id, tenant))
            }
            Err(error) => {
                let hint = match &error {
                    ApiError::Status { status: 404, .. } => format!(
                        "the data center does not know this API client: the URL may name another data center than the one the client was created in; {}",
                        url_hint(source)
                    ),
                    ApiError::Status { status: 403, .. } => "the API client may not read its own record; check its role in the management console".to_owned(),
                    _ => "try again; if it persists, check the network path and the data center's status".to_owned(),
                };
                list.fail(
                    CheckId::ClientTenant,
                    T_CLIENT_TENANT,
                    error.to_string(),
                    hint,
                );
                None
            }
        },
    };

    // The job's tenants and children_of roots.
    if let Some(job) = &job {
        let own = own_tenant
            .as_ref()
            .map(|(id, info)| describe_tenant(id, info.as_ref()));
        check_tenants(&client, job, own.as_deref(), &mut list).await;
    }

    if options.create_test_report {
        let subject = job
            .as_ref()
            .and_then(|j| {
                j.tenants
                    .first()
                    .map(|t| (t.id.clone(), t.name.clone()))
                    .or_else(|| {
                        j.discoveries
                            .first()
                            .map(|d| (d.parent_id.clone(), d.parent_id.clone()))
                    })
            })
            .or_else(|| {
                own_tenant
                    .as_ref()
                    .map(|(id, info)| (id.clone(), describe_tenant(id, info.as_ref())))
            });
        match subject {
            Some((tenant_id, name)) => {
                test_report(&client, &tenant_id, &name, today, &options, &mut list).await;
            }
            None => {
                list.fail(
                    CheckId::TestReport,
                    T_TEST,
                    "no tenant to create it for",
                    "give a job file, or set ACRONIS_CLIENT_ID so the API client's own tenant is used",
                );
            }
        }
    }
    list.finish(Some(&client))
}

/// The credentials as `run` takes them, or why they cannot be used (detail, hint).
fn credentials_of(env: &Environment) -> Result<Credentials, (String, String)> {
    match (&env.client_id, &env.client_secret, &env.token) {
        (Some(id), Some(secret), _) => Ok(Credentials::Client {
            id: id.clone(),
            secret: secret.clone(),
        }),
        (Some(_), None, None) => Err((
            "ACRONIS_CLIENT_ID is set but ACRONIS_CLIENT_SECRET is not".to_owned(),
            "set both, or ACRONIS_TOKEN".to_owned(),
        )),
        (None, Some(_), None) => Err((
            "ACRONIS_CLIENT_SECRET is set but ACRONIS_CLIENT_ID is not".to_owned(),
            "set both, or ACRONIS_TOKEN".to_owned(),
        )),
        (_, _, Some(token)) => Ok(Credentials::Token(token.clone())),
        (None, None, None) => Err((
            "no credentials are set".to_owned(),
            "set ACRONIS_CLIENT_ID and ACRONIS_CLIENT_SECRET (an API client from the management console, Settings → API clients), or ACRONIS_TOKEN".to_owned(),
        )),
    }
}

/// `"Name" (kind, id)`, or the id alone.
fn describe_tenant(id: &str, info: Option<&TenantInfo>) -> String {
    let Some(info) = info else {
        return format!("tenant {id}");
    };
    let name = info
        .name
        .as_deref()
        .map(|n| one_line(n, 80))
        .filter(|n| !n.is_empty());
    match (name, info.kind.as_deref()) {
        (Some(name), Some(kind)) => format!("\"{name}\" ({}, {id})", one_line(kind, 20)),
        (Some(name), None) => format!("\"{name}\" ({id})"),
        (None, Some(kind)) => format!("tenant {id} ({})", one_line(kind, 20)),
        (None, None) => format!("tenant {id}"),
    }
}
