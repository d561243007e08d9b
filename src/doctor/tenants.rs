//! Whether the tenants the job lists, and its `children_of` roots, are visible to the API client.

use futures_util::StreamExt as _;

use crate::api::{ApiError, Client};
use crate::job::Job;

use super::*;

/// Why a tenant cannot be seen, most likely.
pub(super) fn invisible_hint(own: Option<&str>) -> String {
    let owner = own.map_or_else(
        || "the API client's tenant".to_owned(),
        |own| format!("the API client's tenant, {own},"),
    );
    format!(
        "the tenant is not visible to the API client: {owner} is not an ancestor of it (create the API client in a tenant above it), or it lives in another data center than ACRONIS_BASE_URL; check the UUID in the job file"
    )
}

/// At most this many tenant reads at once.
pub(super) const TENANT_READS_AT_ONCE: usize = 8;

pub(super) async fn check_tenants(
    client: &Client,
    job: &Job,
    own: Option<&str>,
    list: &mut Checklist,
) {
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
