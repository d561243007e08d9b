//! Scenario knobs for the sandbox: what it simulates and which faults it injects.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::SandboxError;
use super::content::{self, ContentOptions};

/// Everything that shapes one sandbox run. Every fault is off by default, so
/// `Scenario::default()` behaves like a healthy (if fast) Acronis service.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// API client id the token endpoint accepts.
    pub client_id: String,
    /// API client secret the token endpoint accepts. Never logged; a refused one is echoed in
    /// the token endpoint's error, as careless servers do.
    pub client_secret: String,
    /// Time from report creation until its stored files are `saved`.
    #[serde(deserialize_with = "de_duration")]
    pub generation_delay: Duration,
    /// Uniform relative jitter applied per report to the generation delay
    /// (0.3 = ±30 %). Must be in `[0, 1)`.
    pub generation_jitter: f64,
    /// Each tenant's own generation time, the same every time (like real partners, whose
    /// reports are slow or quick month after month): log-normal with this σ around
    /// `generation_delay` (then the median), drawn from the tenant's id. 0 (the default): one
    /// time for every tenant. The jitter applies on top, per report.
    pub generation_spread: f64,
    /// With `generation_spread`: the part of every tenant's time that does not spread (a fixed
    /// cost of any report), so times range from just above it to many times the median.
    #[serde(deserialize_with = "de_duration")]
    pub generation_floor: Duration,
    /// Lifetime of issued access tokens.
    #[serde(deserialize_with = "de_duration")]
    pub token_lifetime: Duration,
    /// Gzip download bodies when the request's `Accept-Encoding` allows it. Files stored
    /// compressed (this, or `gzip_without_header`; not bodies over 8 MiB, which are streamed
    /// as they are) are announced in the stored list with their compressed size, as the
    /// vendor's `size` is.
    pub gzip: bool,
    /// Send download bodies gzip-compressed *without* `Content-Encoding` (as
    /// `application/octet-stream`), whatever the request's `Accept-Encoding`: the body is the
    /// stored `.gz` file itself.
    pub gzip_without_header: bool,
    /// Extra latency added before every API answer.
    #[serde(deserialize_with = "de_duration")]
    pub response_delay: Duration,
    /// Extra latency between creating a report and answering `POST /reports`: the report
    /// generates while the answer is on its way (a slow link, a loaded client).
    #[serde(deserialize_with = "de_duration")]
    pub create_answer_delay: Duration,
    /// Per-tenant behaviour, keyed by tenant UUID.
    pub tenants: BTreeMap<String, TenantBehaviour>,
    /// Injected faults, checked in order; the first rule with uses left wins.
    pub faults: Vec<FaultRule>,
    /// Also list an older, different `saved` file per format once a report is
    /// saved, so clients must pick the newest one.
    pub duplicate_stored: bool,
    /// List no stored files at all for the first third of a report's generation time. By
    /// default every requested format is listed as `in_progress` from creation on, as the
    /// vendor's statuses (`in_progress`, `saved`, `failed`) suggest.
    pub empty_stored_list_at_first: bool,
    /// Extra bytes of deterministic rows appended to every `csv_v2_0` file.
    pub pad_bytes: u64,
    /// Report and stored-file ids derived from the request (tenant, period, kind, level,
    /// formats, flags) and how many times this sandbox has seen that same request, instead of
    /// random: two sandboxes given the same requests, in any order and split in any way, answer
    /// with the same ids (for comparing a sharded run with an unsharded one).
    pub deterministic_ids: bool,
    /// Tenants served by `GET /tenants/{id}/children`: a partner's customers, folders, …
    pub tenant_tree: Vec<TreeTenant>,
    /// Page size of `GET /tenants/{id}/children` (cursor paging when a parent has more).
    pub children_page_size: usize,
    /// Shape of the report files (column names, order, extra rows) for every report; a tenant's
    /// own keys under `tenants:` override these one by one.
    pub content: ContentKnobs,
}

/// Knobs for the layout of `csv_v2_0` and `json_v2_0` files. Every key is optional: an unset
/// key falls back to the scenario-wide `content:` section, then to the vendor-like default.
/// Where the vendor's real layout is not public (the SKU column's name, column order, which
/// extra columns exist) these let a test play each plausible variant.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ContentKnobs {
    /// `vendor` (default): the documented columns and row objects; `unknown`: a 200 answer
    /// whose header or keys are unrelated; `html`: a captive portal's sign-in page, served for
    /// every format with `Content-Type: text/html`.
    pub(crate) layout: Option<Layout>,
    /// Header (CSV) or key (JSON) of the SKU field when `show_skus` is requested; default `sku`.
    /// The real name is not public. In JSON a dotted name nests: `offering_item.sku` puts the
    /// SKU inside the `offering_item` object.
    pub(crate) sku_column: Option<String>,
    /// Add columns the vendor's parser does not need (`tenant.name`, `application.name`,
    /// `usage.unit`, `report.generated_at`; in JSON `tenant_name`, `tenant_kind`,
    /// `application_name`), placed among the others.
    pub(crate) extra_columns: Option<bool>,
    /// Shuffle the column order (JSON: key order) deterministically per report tenant; the
    /// vendor's parser finds columns by name, so the order is not fixed.
    pub(crate) reorder_columns: Option<bool>,
    /// `false` drops the `edition` column (JSON: key), as in files the vendor's parser met early.
    pub(crate) edition_column: Option<bool>,
    /// Offering item name of the Disaster Recovery compute points rows.
    pub(crate) compute_points_item: Option<ComputePointsItem>,
    /// Split the storage item into one row per infrastructure backend (`acronis`, `azure`,
    /// `google`) with `infra.id`, `infra.owner_id` and `infra.backend_type` set.
    pub(crate) infra_rows: Option<bool>,
    /// Some customers have trial usage, so billing customers on `total` differs from billing
    /// them on `production` (default `true`).
    pub(crate) customer_trial: Option<bool>,
    /// Partner rows (the report tenant's own and child partners') carry a little trial usage
    /// besides production, so billing partners on `production` differs from `total`
    /// (default `true`).
    pub(crate) partner_trial: Option<bool>,
}

/// What a downloaded file looks like as a whole.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// Files as the vendor documents them.
    #[default]
    Vendor,
    /// `csv_v2_0` and `json_v2_0` files with columns (keys) the client does not know.
    Unknown,
    /// An HTML login page instead of any file (what a proxy or an expired session may hand out).
    Html,
}

/// The offering item names under which Disaster Recovery compute points have been seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum ComputePointsItem {
    /// `pw_base_adv_dr_compute_points` (the default).
    #[default]
    #[serde(rename = "pw_base_adv_dr_compute_points")]
    PwBaseAdvDrComputePoints,
    /// `compute_points`.
    #[serde(rename = "compute_points")]
    ComputePoints,
    /// `pw_compute_points`.
    #[serde(rename = "pw_compute_points")]
    PwComputePoints,
    /// `dre_compute_points`.
    #[serde(rename = "dre_compute_points")]
    DreComputePoints,
    /// `p_dre_compute_points`.
    #[serde(rename = "p_dre_compute_points")]
    PDreComputePoints,
}

impl ComputePointsItem {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ComputePointsItem::PwBaseAdvDrComputePoints => "pw_base_adv_dr_compute_points",
            ComputePointsItem::ComputePoints => "compute_points",
            ComputePointsItem::PwComputePoints => "pw_compute_points",
            ComputePointsItem::DreComputePoints => "dre_compute_points",
            ComputePointsItem::PDreComputePoints => "p_dre_compute_points",
        }
    }
}

impl ContentKnobs {
    /// These knobs, with every unset key taken from `fallback`.
    pub(crate) fn over(&self, fallback: &ContentKnobs) -> ContentKnobs {
        ContentKnobs {
            layout: self.layout.or(fallback.layout),
            sku_column: self
                .sku_column
                .clone()
                .or_else(|| fallback.sku_column.clone()),
            extra_columns: self.extra_columns.or(fallback.extra_columns),
            reorder_columns: self.reorder_columns.or(fallback.reorder_columns),
            edition_column: self.edition_column.or(fallback.edition_column),
            compute_points_item: self.compute_points_item.or(fallback.compute_points_item),
            infra_rows: self.infra_rows.or(fallback.infra_rows),
            customer_trial: self.customer_trial.or(fallback.customer_trial),
            partner_trial: self.partner_trial.or(fallback.partner_trial),
        }
    }

    pub(crate) fn resolve(&self) -> ContentOptions {
        let d = ContentOptions::default();
        ContentOptions {
            layout: self.layout.unwrap_or(d.layout),
            sku_column: self.sku_column.clone().unwrap_or(d.sku_column),
            extra_columns: self.extra_columns.unwrap_or(d.extra_columns),
            reorder_columns: self.reorder_columns.unwrap_or(d.reorder_columns),
            edition_column: self.edition_column.unwrap_or(d.edition_column),
            compute_points_item: self.compute_points_item.unwrap_or(d.compute_points_item),
            infra_rows: self.infra_rows.unwrap_or(d.infra_rows),
            customer_trial: self.customer_trial.unwrap_or(d.customer_trial),
            partner_trial: self.partner_trial.unwrap_or(d.partner_trial),
        }
    }

    fn validate(&self, at: &str) -> Result<(), SandboxError> {
        if let Some(name) = &self.sku_column {
            check_sku_column(name)
                .map_err(|why| SandboxError::Invalid(format!("{at}sku_column '{name}' {why}")))?;
        }
        Ok(())
    }
}

/// Why a SKU column name could not be served unambiguously in both formats, if it cannot.
fn check_sku_column(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.len() > 64 {
        return Err("is longer than 64 bytes".into());
    }
    if name.trim() != name || name.chars().any(|c| c.is_control() || c == ',' || c == '"') {
        return Err(
            "must not contain commas, quotes, control characters or surrounding blanks".into(),
        );
    }
    if name.split('.').any(str::is_empty) {
        return Err("has an empty part between dots".into());
    }
    // A name equal to another column or key would make the SKU indistinguishable from it.
    let (head, _) = name.split_once('.').unwrap_or((name, ""));
    if let Some(taken) = content::RESERVED_NAMES.iter().find(|r| {
        r.eq_ignore_ascii_case(name) || (r.eq_ignore_ascii_case(head) && **r != "offering_item")
    }) {
        return Err(format!("clashes with the column or key '{taken}'"));
    }
    Ok(())
}

/// One tenant of the sandbox's tenant tree.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeTenant {
    /// The tenant's id (a UUID in the real API; any unique text here).
    pub id: String,
    /// The tenant's display name.
    pub name: String,
    /// `partner`, `folder`, `customer` or `unit`.
    pub kind: String,
    /// The id of the tenant above it in the tree (the client's own tenant for the top ones).
    pub parent_id: String,
    /// Whether the tenant is enabled (default `true`); the real API lists disabled tenants too.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `production` or `trial`.
    #[serde(default = "production")]
    pub pricing_mode: String,
}

fn yes() -> bool {
    true
}

/// The partner of the README's `children_of` example, which the default tenant tree hangs from.
pub(crate) const DEFAULT_PARTNER: &str = "3f1c0a52-7e0e-4d4b-9b0a-2f4cf0f0a001";

/// The tenant tree of a scenario that defines none, so that `children_of` examples run as
/// written: under [`DEFAULT_PARTNER`], customers (some named `… GmbH`, one `Test …`), a
/// sub-partner with a customer of its own, a disabled and a trial customer.
pub(crate) fn default_tenant_tree() -> Vec<TreeTenant> {
    const SUB_PARTNER: &str = "3f1c0a52-7e0e-4d4b-9b0a-2f4cf0f0a010";
    let tenant = |n: u32, name: &str, kind: &str, parent: &str| TreeTenant {
        id: format!("3f1c0a52-7e0e-4d4b-9b0a-2f4cf0f0a{n:03}"),
        name: name.to_owned(),
        kind: kind.to_owned(),
        parent_id: parent.to_owned(),
        enabled: true,
        pricing_mode: "production".to_owned(),
    };
    let mut tree = vec![
        tenant(2, "Alpenblick GmbH", "customer", DEFAULT_PARTNER),
        tenant(3, "Brenner Bau GmbH", "customer", DEFAULT_PARTNER),
        tenant(4, "Test Labor GmbH", "customer", DEFAULT_PARTNER),
        tenant(5, "Seeblick Hotel AG", "customer", DEFAULT_PARTNER),
        tenant(10, "Reseller Süd", "partner", DEFAULT_PARTNER),
        tenant(11, "Donau Logistik GmbH", "customer", SUB_PARTNER),
        tenant(6, "Altkunde GmbH", "customer", DEFAULT_PARTNER),
        tenant(7, "Probe GmbH", "customer", DEFAULT_PARTNER),
    ];
    tree[6].enabled = false;
    tree[7].pricing_mode = "trial".to_owned();
    tree
}

fn production() -> String {
    "production".to_owned()
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            client_id: "sandbox-client".to_owned(),
            client_secret: "sandbox-secret".to_owned(),
            generation_delay: Duration::from_secs(1),
            generation_jitter: 0.0,
            generation_spread: 0.0,
            generation_floor: Duration::ZERO,
            token_lifetime: Duration::from_secs(2 * 60 * 60),
            gzip: true,
            gzip_without_header: false,
            response_delay: Duration::ZERO,
            create_answer_delay: Duration::ZERO,
            tenants: BTreeMap::new(),
            faults: Vec::new(),
            duplicate_stored: false,
            empty_stored_list_at_first: false,
            pad_bytes: 0,
            deterministic_ids: false,
            tenant_tree: default_tenant_tree(),
            children_page_size: 100,
            content: ContentKnobs::default(),
        }
    }
}

impl fmt::Debug for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hand-written so the secret never reaches a log line.
        f.debug_struct("Scenario")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("generation_delay", &self.generation_delay)
            .field("generation_jitter", &self.generation_jitter)
            .field("generation_spread", &self.generation_spread)
            .field("generation_floor", &self.generation_floor)
            .field("token_lifetime", &self.token_lifetime)
            .field("gzip", &self.gzip)
            .field("response_delay", &self.response_delay)
            .field("create_answer_delay", &self.create_answer_delay)
            .field("tenants", &self.tenants)
            .field("faults", &self.faults)
            .field("duplicate_stored", &self.duplicate_stored)
            .field(
                "empty_stored_list_at_first",
                &self.empty_stored_list_at_first,
            )
            .field("gzip_without_header", &self.gzip_without_header)
            .field("pad_bytes", &self.pad_bytes)
            .field("deterministic_ids", &self.deterministic_ids)
            .field("content", &self.content)
            .finish()
    }
}

/// How the sandbox treats reports for one tenant.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantBehaviour {
    /// Stored files end in status `failed` instead of `saved`.
    pub fail: bool,
    /// Every SKU cell is empty, as for a partner without SKU access.
    pub no_skus: bool,
    /// Overrides `Scenario::generation_delay` for this tenant.
    #[serde(deserialize_with = "de_opt_duration")]
    pub generation_delay: Option<Duration>,
    /// A tenant the API client cannot see (outside its tenant's subtree, or in another data
    /// center): `POST /reports`, `GET /tenants/{id}` and `GET /tenants/{id}/children` answer
    /// 404 "Tenant not found".
    pub unknown: bool,
    /// The `content:` knobs for this tenant's reports, written next to the keys above
    /// (`{no_skus: true, sku_column: SKU}`); each overrides the scenario-wide one.
    #[serde(flatten)]
    pub content: ContentKnobs,
}

/// The API operation a fault rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `POST /idp/token`.
    Token,
    /// `POST /reports`.
    Create,
    /// `GET /reports/{id}/stored`.
    StoredList,
    /// `GET /reports/{id}/stored/{file}`.
    Download,
    /// `DELETE /reports/{id}`.
    Delete,
    /// `GET /clients/{id}`.
    Client,
    /// `GET /tenants/{id}` (not the children listing).
    Tenant,
    /// Any of the operations above (not other routes, not `/_sandbox`).
    Any,
}

impl Endpoint {
    pub(crate) fn matches(self, actual: Endpoint) -> bool {
        self == Endpoint::Any || self == actual
    }
}

/// One injected fault. A rule needs either `status` or `truncate`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// Which operation the fault applies to.
    pub endpoint: Endpoint,
    /// How many matching requests (counted per rule, over the whole run) get the fault.
    #[serde(default = "one")]
    pub times: u32,
    /// Answer with this HTTP status and the standard error envelope.
    #[serde(default)]
    pub status: Option<u16>,
    /// `Retry-After` header value sent with `status` (seconds or an HTTP date).
    #[serde(default, deserialize_with = "de_opt_string_or_int")]
    pub retry_after: Option<String>,
    /// With `status`: the error envelope's `message` instead of the standard one, e.g. the
    /// vendor's "Usage history is not ready and shouldn't be ready yet (from 1 to 6 am)" (400)
    /// or "Usage history is not ready but should be available already (after 6 am)" (500) on
    /// `create`.
    #[serde(default)]
    pub message: Option<String>,
    /// Downloads only: announce the full `Content-Length`, send half the body,
    /// then abort the connection.
    #[serde(default)]
    pub truncate: bool,
    /// Answer with a broken or hostile body instead (status 200 unless `status` is set).
    #[serde(default)]
    pub hostile: Option<Hostile>,
}

/// Ways a broken server, proxy or attacker can answer; the client must fail the one report
/// with a clear reason and never crash or allocate without bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hostile {
    /// A proxy's HTML error page.
    HtmlPage,
    /// `Content-Type: application/json` with a body that is not JSON.
    InvalidJson,
    /// `Content-Type: text/plain` with a body that is not JSON.
    WrongContentType,
    /// A JSON-looking body that never ends.
    EndlessBody,
    /// A stored-file list whose items are not objects.
    OddStoredItem,
    /// A download far larger than the size the stored list announced.
    Oversize,
    /// An error (500 unless `status` is set) whose message repeats the request's
    /// `Authorization` value: a careless server or proxy.
    EchoAuthorization,
}

impl Default for FaultRule {
    fn default() -> Self {
        FaultRule {
            endpoint: Endpoint::Any,
            times: 1,
            status: None,
            retry_after: None,
            message: None,
            truncate: false,
            hostile: None,
        }
    }
}

fn one() -> u32 {
    1
}

impl Scenario {
    /// Load a scenario from a YAML (or JSON, which is YAML) file and validate it.
    pub fn from_yaml_file(path: &Path) -> Result<Scenario, SandboxError> {
        let text = std::fs::read_to_string(path).map_err(|source| SandboxError::Read {
            path: path.to_owned(),
            source,
        })?;
        Scenario::from_yaml_str(&text).map_err(|err| match err {
            SandboxError::Invalid(message) | SandboxError::Parse { message, .. } => {
                SandboxError::Parse {
                    path: path.to_owned(),
                    message,
                }
            }
            other => other,
        })
    }

    /// Parse and validate a scenario held in memory. Errors carry no path.
    pub fn from_yaml_str(text: &str) -> Result<Scenario, SandboxError> {
        // An empty file (or one with only comments) means "all defaults";
        // YAML parses it as null, which a struct would reject.
        let meaningful = text
            .lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#') && l.trim() != "---");
        let scenario: Scenario = if meaningful {
            serde_saphyr::from_str(text).map_err(|e| SandboxError::Invalid(e.to_string()))?
        } else {
            Scenario::default()
        };
        scenario.validate()?;
        Ok(scenario)
    }

    /// Reject combinations the server could not honour, naming the offending field.
    pub(crate) fn validate(&self) -> Result<(), SandboxError> {
        let bad = |msg: String| Err(SandboxError::Invalid(msg));
        if self.client_id.is_empty() {
            return bad("client_id must not be empty".into());
        }
        if self.client_id.contains(':') {
            // Basic auth splits on the first colon, so such an id could never log in.
            return bad("client_id must not contain ':'".into());
        }
        if self.client_secret.is_empty() {
            return bad("client_secret must not be empty".into());
        }
        if !(self.generation_jitter >= 0.0 && self.generation_jitter < 1.0) {
            return bad(format!(
                "generation_jitter must be a fraction in [0, 1), got {}",
                self.generation_jitter
            ));
        }
        if !(0.0..=3.0).contains(&self.generation_spread) {
            return bad(format!(
                "generation_spread must be a log-normal σ in [0, 3], got {}",
                self.generation_spread
            ));
        }
        if self.generation_floor > self.generation_delay {
            return bad(format!(
                "generation_floor ({:?}) must not exceed generation_delay ({:?}), the median",
                self.generation_floor, self.generation_delay
            ));
        }
        if self.children_page_size == 0 {
            return bad("children_page_size must be at least 1".into());
        }
        if self.token_lifetime.is_zero() {
            return bad("token_lifetime must be greater than zero".into());
        }
        self.content.validate("content: ")?;
        for (key, behaviour) in &self.tenants {
            if !is_canonical_uuid(key) {
                return bad(format!(
                    "tenants: key '{key}' is not a UUID like 3f1c0a52-7e0e-4d4b-9b0a-2f4cf0f0a001"
                ));
            }
            behaviour.content.validate(&format!("tenants: {key}: "))?;
        }
        for (i, rule) in self.faults.iter().enumerate() {
            let at = format!("faults[{i}]");
            if rule.hostile.is_some() {
                if rule.truncate {
                    return bad(format!("{at}: set either hostile or truncate, not both"));
                }
                continue;
            }
            match (rule.status, rule.truncate) {
                (Some(_), true) => {
                    return bad(format!("{at}: set either status or truncate, not both"));
                }
                (None, false) => {
                    return bad(format!("{at}: set status (e.g. 503) or truncate: true"));
                }
                (Some(status), false) => {
                    if !(400..=599).contains(&status) {
                        return bad(format!(
                            "{at}: status {status} is not an HTTP error status (400-599)"
                        ));
                    }
                }
                (None, true) => {
                    if !matches!(rule.endpoint, Endpoint::Download | Endpoint::Any) {
                        return bad(format!(
                            "{at}: truncate only applies to the download endpoint"
                        ));
                    }
                }
            }
            if rule.message.is_some() && rule.status.is_none() {
                return bad(format!("{at}: message needs a status"));
            }
            if let Some(value) = &rule.retry_after {
                if rule.status.is_none() {
                    return bad(format!("{at}: retry_after needs a status"));
                }
                if value.is_empty() || axum::http::HeaderValue::from_str(value).is_err() {
                    return bad(format!(
                        "{at}: retry_after '{value}' is not a valid header value"
                    ));
                }
            }
        }
        Ok(())
    }

    /// A tenant's generation time before the jitter: its own `generation_delay` if it has one,
    /// else `generation_delay`, spread per tenant by `generation_spread`.
    pub(crate) fn generation_of(&self, tenant_id: &str) -> Duration {
        if let Some(delay) = self.tenant(tenant_id).and_then(|t| t.generation_delay) {
            return delay;
        }
        if self.generation_spread <= 0.0 {
            return self.generation_delay;
        }
        // A standard normal draw from the id (Box–Muller on two 32-bit uniforms of its hash):
        // the same tenant gets the same time in every run and every sandbox.
        let digest = content::digest(&["generation", &tenant_id.to_ascii_lowercase()]);
        let uniform = |bytes: &[u8]| {
            let n = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            (f64::from(n) + 0.5) / 4_294_967_296.0
        };
        let (u1, u2) = (uniform(&digest[..4]), uniform(&digest[4..8]));
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let floor = self.generation_floor.as_secs_f64();
        let spread =
            (self.generation_delay.as_secs_f64() - floor) * (self.generation_spread * z).exp();
        Duration::try_from_secs_f64(floor + spread).unwrap_or(self.generation_delay)
    }

    /// Look up tenant behaviour regardless of the UUID's letter case.
    pub(crate) fn tenant(&self, tenant_id: &str) -> Option<&TenantBehaviour> {
        self.tenants
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(tenant_id))
            .map(|(_, v)| v)
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` with hex digits, the only spelling
/// the API uses; `uuid` alone would also accept braces and URNs.
pub(crate) fn is_canonical_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Parse "500ms", "2s", "1.5m", "2h", "0"; a bare number means seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let unit = unit.trim();
    let value: f64 = number.parse().map_err(|_| {
        format!("invalid duration '{text}': expected e.g. \"500ms\", \"2s\", \"1m\"")
    })?;
    let scale = match unit {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "invalid duration '{text}': unit must be ms, s, m or h"
            ));
        }
    };
    Duration::try_from_secs_f64(value * scale).map_err(|_| format!("invalid duration '{text}'"))
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration such as \"500ms\", \"2s\", \"1m\" or \"2h\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_duration(v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Ok(Duration::from_secs(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        u64::try_from(v)
            .map(Duration::from_secs)
            .map_err(|_| E::custom("a duration must not be negative"))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        Duration::try_from_secs_f64(v).map_err(|_| E::custom(format!("invalid duration {v}")))
    }
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor)
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    struct OptVisitor;
    impl<'de> Visitor<'de> for OptVisitor {
        type Value = Option<Duration>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a duration such as \"2s\", or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            de_duration(d).map(Some)
        }
    }
    d.deserialize_option(OptVisitor)
}

/// `Retry-After: 1` is naturally written unquoted in YAML, so accept numbers too.
fn de_opt_string_or_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("seconds (e.g. 1) or an HTTP date string")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(V)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
    }
    d.deserialize_option(V)
}

#[cfg(test)]
mod tests;
