//! The plan: one report request per tenant × period, in job-file order.

use serde::Serialize;

use crate::job::{Job, SkuPolicy};
use crate::period::Period;
use crate::report::{Format, ReportKind, ReportLevel};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportRequest {
    pub tenant_id: String,
    pub tenant_name: String,
    pub period: Period,
    pub kind: ReportKind,
    pub level: ReportLevel,
    pub formats: Vec<Format>,
    pub hide_zero_usage: bool,
    pub show_skus: bool,
    /// The SKU policy that applies to this report (`off` when SKUs were not asked for).
    pub sku_check: SkuPolicy,
    /// Folder of this report's files, relative to the output folder: `<period>/<tenant>`.
    pub dir: String,
}

impl ReportRequest {
    /// Relative path of one format's file: `<period>/<tenant>/<kind>.<format>.<ext>`.
    pub fn file_path(&self, format: Format) -> String {
        format!("{}/{}", self.dir, self.file_name(format))
    }

    pub fn file_name(&self, format: Format) -> String {
        format!("{}.{}.{}", self.kind, format, format.extension())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub reports: Vec<ReportRequest>,
}

pub fn build(job: &Job) -> Plan {
    let reports = job
        .tenants
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
            })
        })
        .collect();
    Plan { reports }
}
