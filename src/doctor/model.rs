//! What doctor is given and what it finds: the environment, the options, each check and its
//! verdict.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::api::SecretHook;
use crate::secret::Secret;

/// The environment variables doctor reads, as the process has them.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    pub(crate) base_url: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret: Option<Secret>,
    pub(crate) token: Option<Secret>,
    /// Proxy settings: (variable, value) for each of HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and
    /// NO_PROXY (either case) that is set.
    pub(crate) proxy: Vec<(String, String)>,
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
    /// The job file to check, if one was given (`--job`).
    pub job: Option<PathBuf>,
    /// `--base-url`: wins over ACRONIS_BASE_URL, which wins over the job file's.
    pub base_url: Option<String>,
    pub(crate) environment: Environment,
    /// Whether to create (and delete) a one-day test report, which proves report creation works.
    pub create_test_report: bool,
    /// Limit of each network step (name resolution, connection, one API call).
    pub(crate) step_timeout: Duration,
    /// Limit of the test report's generation.
    pub(crate) report_timeout: Duration,
    /// Told every credential the client derives or fetches (e.g. to mask it in a CI log).
    pub on_new_secret: Option<SecretHook>,
}

impl Options {
    /// The options to check `environment` with: no job file, no test report, default time limits.
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
pub(crate) enum CheckId {
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
pub(crate) enum Verdict {
    Pass,
    Fail,
    /// Not run, because a check it needs failed (or it does not apply).
    Skipped,
}

/// One line of the checklist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub(crate) check: CheckId,
    pub(crate) status: Verdict,
    /// What was checked, in a few words ("host resolves").
    pub(crate) title: String,
    /// What was found.
    pub(crate) detail: String,
    /// What to do about a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) hint: Option<String>,
    /// The tenant a tenant check is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tenant_id: Option<String>,
}

/// Everything doctor found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Whether no check failed.
    pub ok: bool,
    /// Every check, in the order they ran.
    pub checks: Vec<Check>,
}

impl Report {
    pub(crate) fn count(&self, verdict: Verdict) -> usize {
        self.checks.iter().filter(|c| c.status == verdict).count()
    }
}

/// Where the data-center URL came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UrlSource {
    Flag,
    Environment,
    JobFile,
}

impl UrlSource {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Flag => "--base-url",
            Self::Environment => "ACRONIS_BASE_URL",
            Self::JobFile => "the job file's api.base_url",
        }
    }
}

/// The URL to check and where it came from: `--base-url`, else ACRONIS_BASE_URL, else the job
/// file (the order `run` uses).
pub(crate) fn resolve_base_url(
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
