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

mod render;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde::Serialize;

use crate::api::{
    self, ApiError, Client, ClientOptions, CreateReport, Credentials, PeriodDates,
    ReportParameters, SecretHook, TenantInfo, UsageHistory, one_line,
};
use crate::checks::Inspection;
use crate::job::{self, Job, Polling};
use crate::report::{BillingRule, Format, ReportKind, ReportLevel};
use crate::results::{CheckStatus, SkuStatus};
use crate::secret::Secret;

pub use render::{render_json, render_text, summary};

/// The environment variables doctor reads, as the process has them.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    pub base_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub token: Option<Secret>,
    /// Proxy settings: (variable, value) for each of HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and
    /// NO_PROXY (either case) that is set.
    pub proxy: Vec<(String, String)>,
}

impl Environment {
    /// Reads the variables `run` reads (blank values count as unset).
    pub fn from_process() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let proxy = [
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "ALL_PROXY",
            "all_proxy",
            "NO_PROXY",
            "no_proxy",
        ]
        .iter()
        .filter_map(|name| var(name).map(|value| ((*name).to_owned(), value)))
        .collect();
        Self {
            base_url: var("ACRONIS_BASE_URL"),
            client_id: var("ACRONIS_CLIENT_ID"),
            client_secret: var("ACRONIS_CLIENT_SECRET").map(Secret::new),
            token: var("ACRONIS_TOKEN").map(Secret::new),
            proxy,
        }
    }
}

/// What to check.
#[derive(Clone)]
pub struct Options {
    pub job: Option<PathBuf>,
    /// `--base-url`: wins over ACRONIS_BASE_URL, which wins over the job file's.
    pub base_url: Option<String>,
    pub environment: Environment,
    pub create_test_report: bool,
    /// Limit of each network step (name resolution, connection, one API call).
    pub step_timeout: Duration,
    /// Limit of the test report's generation.
    pub report_timeout: Duration,
    /// Told every credential the client derives or fetches (e.g. to mask it in a CI log).
    pub on_new_secret: Option<SecretHook>,
}

impl Options {
    pub fn new(environment: Environment) -> Self {
        Self {
            job: None,
            base_url: None,
            environment,
            create_test_report: false,
            step_timeout: Duration::from_secs(4),
            report_timeout: Duration::from_secs(300),
            on_new_secret: None,
        }
    }
}

/// Each item doctor checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckId {
    JobFile,
    BaseUrl,
    Proxy,
    Dns,
    Tcp,
    Tls,
    Api,
    Credentials,
    ClientTenant,
    Tenant,
    ChildrenOf,
    TestReport,
    SkuColumn,
    TestReportDeleted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    /// Not run, because a check it needs failed (or it does not apply).
    Skipped,
}

/// One line of the checklist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub check: CheckId,
    pub status: Verdict,
    /// What was checked, in a few words ("host resolves").
    pub title: String,
    /// What was found.
    pub detail: String,
    /// What to do about a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The tenant a tenant check is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

/// Everything doctor found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Whether no check failed.
    pub ok: bool,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn failed(&self) -> usize {
        self.count(Verdict::Fail)
    }

    pub fn count(&self, verdict: Verdict) -> usize {
        self.checks.iter().filter(|c| c.status == verdict).count()
    }
}

/// Where the data-center URL came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlSource {
    Flag,
    Environment,
    JobFile,
}

impl UrlSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Flag => "--base-url",
            Self::Environment => "ACRONIS_BASE_URL",
            Self::JobFile => "the job file's api.base_url",
        }
    }
}

/// The URL to check and where it came from: `--base-url`, else ACRONIS_BASE_URL, else the job
/// file (the order `run` uses).
pub fn resolve_base_url(
    flag: Option<&str>,
    environment: Option<&str>,
    job: Option<&str>,
) -> Option<(String, UrlSource)> {
    let given = |v: Option<&str>| v.filter(|v| !v.trim().is_empty()).map(str::to_owned);
    given(flag)
        .map(|url| (url, UrlSource::Flag))
        .or_else(|| given(environment).map(|url| (url, UrlSource::Environment)))
        .or_else(|| given(job).map(|url| (url, UrlSource::JobFile)))
}

/// The proxy variable that carries requests to `url`, if any: loopback never goes through one
/// (the client makes sure), and NO_PROXY may exempt the host.
pub fn proxy_for(url: &reqwest::Url, variables: &[(String, String)]) -> Option<String> {
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

/// Resolves `host` within `limit`.
async fn resolve(host: &str, port: u16, limit: Duration) -> Result<Vec<SocketAddr>, String> {
    // An address needs no resolver.
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    match tokio::time::timeout(limit, tokio::net::lookup_host((host, port))).await {
        Err(_) => Err(format!(
            "no answer from the resolver within {}s",
            limit.as_secs()
        )),
        Ok(Err(error)) => Err(one_line(&error.to_string(), 200)),
        Ok(Ok(addresses)) => {
            let addresses: Vec<SocketAddr> = addresses.collect();
            if addresses.is_empty() {
                Err("the resolver returned no address".to_owned())
            } else {
                Ok(addresses)
            }
        }
    }
}

/// Connects to the first address that takes a connection, all within `limit`.
async fn connect(addresses: &[SocketAddr], limit: Duration) -> Result<SocketAddr, String> {
    let attempt = async {
        let mut last = String::from("no address to try");
        for addr in addresses {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(_) => return Ok(*addr),
                Err(error) => last = format!("{addr}: {}", one_line(&error.to_string(), 120)),
            }
        }
        Err(last)
    };
    tokio::time::timeout(limit, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("no connection within {}s", limit.as_secs())))
}

/// Why a tenant cannot be seen, most likely.
fn invisible_hint(own: Option<&str>) -> String {
    let owner = own.map_or_else(
        || "the API client's tenant".to_owned(),
        |own| format!("the API client's tenant, {own},"),
    );
    format!(
        "the tenant is not visible to the API client: {owner} is not an ancestor of it (create the API client in a tenant above it), or it lives in another data center than ACRONIS_BASE_URL; check the UUID in the job file"
    )
}

/// At most this many tenant reads at once.
const TENANT_READS_AT_ONCE: usize = 8;

async fn check_tenants(client: &Client, job: &Job, own: Option<&str>, list: &mut Checklist) {
    let lookups: Vec<(CheckId, String, String)> = job
        .tenants
        .iter()
        .map(|t| (CheckId::Tenant, t.id.clone(), t.name.clone()))
        .chain(
            job.discoveries
                .iter()
                .map(|d| (CheckId::ChildrenOf, d.parent_id.clone(), String::new())),
        )
        .collect();
    let answers: Vec<_> =
        futures_util::stream::iter(lookups.iter().map(|(_, id, _)| client.tenant(id)))
            .buffered(TENANT_READS_AT_ONCE)
            .collect()
            .await;
    let mut visible: Vec<String> = Vec::new();
    for ((check, id, name), answer) in lookups.iter().zip(answers) {
        let title = if *check == CheckId::Tenant {
            T_TENANT
        } else {
            T_CHILDREN
        };
        let label = if name.is_empty() {
            id.clone()
        } else {
            format!("{name} ({id})")
        };
        match answer {
            Ok(info) => {
                if *check == CheckId::ChildrenOf {
                    list.pass(
                        *check,
                        title,
                        format!("{} is visible", describe_tenant(id, Some(&info))),
                    )
                    .tenant_id = Some(id.clone());
                } else if info.enabled == Some(false) {
                    visible.push(format!("{name} (disabled)"));
                } else {
                    visible.push(name.clone());
                }
            }
            Err(
                error @ ApiError::Status {
                    status: 403 | 404, ..
                },
            ) => {
                list.fail(
                    *check,
                    title,
                    format!("{label} is not visible: {error}"),
                    invisible_hint(own),
                )
                .tenant_id = Some(id.clone());
            }
            Err(error) => {
                list.fail(
                    *check,
                    title,
                    format!("could not check {label}: {error}"),
                    "try again; if it persists, check the network path and the data center's status",
                )
                .tenant_id = Some(id.clone());
            }
        }
    }
    if !visible.is_empty() {
        const NAMED: usize = 5;
        let mut names = visible
            .iter()
            .take(NAMED)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if visible.len() > NAMED {
            names.push_str(&format!(" and {} more", visible.len() - NAMED));
        }
        // The line for the visible ones comes before the lines of the others.
        let first = list
            .checks
            .iter()
            .position(|c| matches!(c.check, CheckId::Tenant | CheckId::ChildrenOf))
            .unwrap_or(list.checks.len());
        list.checks.insert(
            first,
            Check {
                check: CheckId::Tenant,
                status: Verdict::Pass,
                title: "job tenants".to_owned(),
                detail: format!(
                    "{} of {} visible: {names}",
                    visible.len(),
                    job.tenants.len()
                ),
                hint: None,
                tenant_id: None,
            },
        );
    }
}

/// Creates, waits for, downloads, checks and deletes one small report for `tenant_id`.
async fn test_report(
    client: &Client,
    tenant_id: &str,
    name: &str,
    today: jiff::civil::Date,
    options: &Options,
    list: &mut Checklist,
) {
    // Yesterday: the last whole day (usage data refreshes daily at UTC midnight).
    let day = today.yesterday().unwrap_or(today).to_string();
    let body = CreateReport::once(ReportParameters {
        tenant_id: tenant_id.to_owned(),
        kind: ReportKind::UsageCurrent,
        level: ReportLevel::Itself,
        formats: vec![Format::CsvV2],
        period: PeriodDates {
            start: day.clone(),
            end: day,
        },
        hide_zero_usage: false,
        show_skus: true,
    });
    let rest = [
        (CheckId::SkuColumn, T_SKU),
        (CheckId::TestReportDeleted, T_DELETED),
    ];
    let created_at = Instant::now();
    let created = match client.create_report(&body).await {
        Ok(created) => created,
        Err(error) => {
            let hint = match (&error, error.usage_history_not_ready()) {
                (_, Some(UsageHistory::NotYetDue)) => {
                    "the server prepares the usage history between 01:00 and 06:00 UTC; try again after 06:00 UTC".to_owned()
                }
                (_, Some(UsageHistory::Overdue)) => "the usage history is late; try again later".to_owned(),
                (ApiError::Status { status: 403, .. }, _) => {
                    "the API client may not create reports for this tenant; check its role in the management console".to_owned()
                }
                (ApiError::Status { status: 404, .. }, _) => invisible_hint(None),
                _ => "try again; if it persists, ask Acronis support".to_owned(),
            };
            list.fail(
                CheckId::TestReport,
                T_TEST,
                format!("creating a usage_current report for {name} failed: {error}"),
                hint,
            );
            list.skip_all(&rest, "needs the test report");
            return;
        }
    };
    let outcome = fetch_and_check(client, &created.id, options, created_at).await;
    match outcome {
        Ok((bytes, facts)) => {
            list.pass(
                CheckId::TestReport,
                T_TEST,
                format!(
                    "a usage_current report for {name} was created, saved after {:.1}s and downloaded ({bytes} bytes, {} row(s))",
                    created_at.elapsed().as_secs_f64(),
                    facts.content_check.rows
                ),
            )
            .tenant_id = Some(tenant_id.to_owned());
            sku_verdict(&facts, list);
        }
        Err((detail, hint)) => {
            list.fail(CheckId::TestReport, T_TEST, detail, hint)
                .tenant_id = Some(tenant_id.to_owned());
            list.skip(CheckId::SkuColumn, T_SKU, "needs the test report's file");
        }
    }
    // Always deleted, whatever happened to it.
    let version = created.version.unwrap_or(1);
    match client.delete_report(&created.id, version).await {
        Ok(()) => {
            list.pass(
                CheckId::TestReportDeleted,
                T_DELETED,
                format!(
                    "report {} deleted (DELETE /api/2/reports/{{id}}?version={version})",
                    created.id
                ),
            );
        }
        Err(error) => {
            list.fail(
                CheckId::TestReportDeleted,
                T_DELETED,
                format!("could not delete report {}: {error}", created.id),
                format!(
                    "delete it in the management console, or with DELETE /api/2/reports/{}?version={version}",
                    created.id
                ),
            );
        }
    }
}

/// Waits for the test report's file and downloads it into a temporary folder (removed again),
/// checking it on the way. Returns its size and what the check found, or (detail, hint).
async fn fetch_and_check(
    client: &Client,
    report_id: &str,
    options: &Options,
    created_at: Instant,
) -> Result<(u64, crate::checks::FileFacts), (String, String)> {
    let polling = Polling {
        initial_interval: Duration::from_millis(500),
        max_interval: Duration::from_secs(5),
        timeout: options.report_timeout,
    };
    let model = crate::poll::GenerationModel::new();
    let waiting = crate::poll::Waiting {
        report_id,
        formats: &[Format::CsvV2],
        created: created_at,
        created_here: true,
        expected: None,
    };
    let files = crate::poll::wait_until_ready(client, &waiting, &polling, &model)
        .await
        .map(|waited| waited.files)
        .map_err(|e| {
            (
                format!("the test report {report_id} did not become ready: {e}"),
                "try again later; if it persists, ask Acronis support".to_owned(),
            )
        })?;
    let Some(file) = files.into_iter().next() else {
        return Err((
            format!("the test report {report_id} lists no csv_v2_0 file"),
            "try again later; if it persists, ask Acronis support".to_owned(),
        ));
    };
    let folder = tempfile::tempdir().map_err(|e| {
        (
            format!("cannot make a temporary folder for the test report: {e}"),
            "check TMPDIR".to_owned(),
        )
    })?;
    let dest = folder.path().join("test-report.csv");
    let inspection = Inspection {
        format: Format::CsvV2,
        check_skus: true,
        rule: Arc::new(BillingRule::default()),
    };
    let downloaded = crate::download::fetch_to_file(
        client,
        report_id,
        &file.stored_id,
        file.size,
        &dest,
        inspection,
        crate::download::Policy::default(),
    )
    .await
    .map_err(|e| {
        (
            format!("downloading the test report's file failed: {e}"),
            "check HTTPS_PROXY/NO_PROXY and try again".to_owned(),
        )
    })?;
    Ok((downloaded.bytes, downloaded.inspected))
}

/// The SKU line: every row of the test report carries a SKU.
fn sku_verdict(facts: &crate::checks::FileFacts, list: &mut Checklist) {
    let content = &facts.content_check;
    let sku = &facts.sku_check;
    if content.status == CheckStatus::Failed {
        list.fail(
            CheckId::SkuColumn,
            T_SKU,
            format!(
                "the file failed its content check: {}",
                content.problem.as_deref().unwrap_or("no reason given")
            ),
            "the server's file layout is not one we can bill from; see the README's \"What we assume about report files\"",
        );
        return;
    }
    match (sku.status, sku.column.as_deref()) {
        (_, _) if sku.rows == 0 => {
            list.pass(
                CheckId::SkuColumn,
                T_SKU,
                "the file reads, but has no usage rows to carry a SKU (the tenant used nothing yesterday): SKU access is not proven",
            );
        }
        (SkuStatus::Ok, column) => {
            list.pass(
                CheckId::SkuColumn,
                T_SKU,
                format!(
                    "every one of {} row(s) has a SKU (column `{}`)",
                    sku.rows,
                    column.unwrap_or("sku")
                ),
            );
        }
        (_, None) => {
            list.fail(
                CheckId::SkuColumn,
                T_SKU,
                format!("the file has no SKU column ({} row(s))", sku.rows),
                "the partner may lack SKU access: ask Acronis, or set checks.skus: warn in the job file",
            );
        }
        (_, Some(column)) => {
            list.fail(
                CheckId::SkuColumn,
                T_SKU,
                format!(
                    "{} of {} row(s) lack a SKU (column `{column}`)",
                    sku.rows_without_sku, sku.rows
                ),
                "the partner may lack SKU access: ask Acronis, or set checks.skus: warn in the job file",
            );
        }
    }
}
