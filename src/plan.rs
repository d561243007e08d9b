//! The plan: one report request per tenant × period, in job-file order.

use serde::Serialize;

use crate::job::{Job, SkuPolicy, Tenant};
use crate::period::Period;
use crate::report::{Format, ReportKind, ReportLevel};

/// One report to create: a tenant, a period and the report's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportRequest {
    /// The tenant the report is about.
    pub tenant_id: String,
    /// The tenant's name, for file names, logs and the summary.
    pub tenant_name: String,
    /// The period the report covers.
    pub period: Period,
    /// The report's `type` (`usage_current`, `usage_summary`, …).
    pub kind: ReportKind,
    /// The report's `level`: how deep into the tenant's tree it goes.
    pub level: ReportLevel,
    /// The file formats to download.
    pub formats: Vec<Format>,
    pub(crate) hide_zero_usage: bool,
    pub(crate) show_skus: bool,
    /// The SKU policy that applies to this report (`off` when SKUs were not asked for).
    pub sku_check: SkuPolicy,
    /// Folder of this report's files, relative to the output folder: `<period>/<tenant>`.
    pub dir: String,
    /// Position in the whole plan (0-based); kept when a shard selects a part of the plan.
    pub(crate) index: usize,
}

impl ReportRequest {
    /// Relative path of one format's file: `<period>/<tenant>/<kind>.<format>.<ext>`.
    pub fn file_path(&self, format: Format) -> String {
        format!("{}/{}", self.dir, self.file_name(format))
    }

    pub(crate) fn file_name(&self, format: Format) -> String {
        format!("{}.{}.{}", self.kind, format, format.extension())
    }
}

/// Every report of a run, in job-file order (tenants, then their periods).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The reports, in job-file order.
    pub reports: Vec<ReportRequest>,
}

/// The plan of a job whose tenants are all listed by id (see [`build_for`] after discovery).
pub fn build(job: &Job) -> Plan {
    build_for(job, &job.tenants)
}

/// The plan for `tenants`: the job's own, or those of a `children_of` expansion.
pub(crate) fn build_for(job: &Job, tenants: &[Tenant]) -> Plan {
    // Sized exactly: a run holds this list until it ends.
    let mut reports = Vec::with_capacity(tenants.iter().map(|t| t.periods.len()).sum());
    reports.extend(
        tenants
            .iter()
            .flat_map(|tenant| {
                tenant.periods.iter().map(move |period| ReportRequest {
                    tenant_id: tenant.id.clone(),
                    tenant_name: tenant.name.clone(),
                    period: *period,
                    kind: tenant.kind,
                    level: tenant.level,
                    formats: tenant.formats.clone(),
                    hide_zero_usage: tenant.hide_zero_usage,
                    show_skus: tenant.show_skus,
                    sku_check: if tenant.show_skus {
                        job.sku_policy
                    } else {
                        SkuPolicy::Off
                    },
                    dir: format!("{}/{}", period.label(), tenant.dir_name),
                    index: 0,
                })
            })
            .enumerate()
            .map(|(index, request)| ReportRequest { index, ..request }),
    );
    Plan { reports }
}
