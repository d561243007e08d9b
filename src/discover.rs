//! Expanding `children_of` entries: the tenants under a partner, listed from the API when the
//! job runs (`GET /tenants/{id}/children?include_details=true`, following cursor pages).
//!
//! Choices, recorded per tenant in the manifest so an audit sees what was in scope and why:
//! disabled tenants and trial tenants (`pricing_mode: trial`) are left out unless the entry says
//! `include_disabled` / `include_trial`; a tenant also listed by `id` keeps its own entry; one
//! found by two `children_of` entries belongs to the first. Children are taken in name order.

use std::collections::{HashSet, VecDeque};

use crate::api::{ApiError, Client, TenantInfo, one_line};
use crate::disk::paths::safe_component;
use crate::job::{Discovery, Job, Tenant, is_uuid};
use crate::results::{DiscoveredTenant, DiscoveryRecord};

/// Far more pages than any real partner has; a server that keeps paging is broken.
const MAX_PAGES: usize = 100_000;

/// The job's tenants with every `children_of` entry replaced by the children it found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Expansion {
    pub tenants: Vec<Tenant>,
    pub(crate) records: Vec<DiscoveryRecord>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot list the children of tenant {parent_id}: {source}")]
pub struct DiscoveryError {
    pub(crate) parent_id: String,
    #[source]
    pub(crate) source: ApiError,
}

/// Lists the children of every `children_of` entry and merges them into the tenant list.
pub(crate) async fn expand(client: &Client, job: &Job) -> Result<Expansion, DiscoveryError> {
    let mut listed = Vec::with_capacity(job.discoveries.len());
    for discovery in &job.discoveries {
        listed.push(list_subtree(client, discovery).await?);
    }
    Ok(merge(job, &listed))
}

/// Every tenant below the discovery's parent (one level, or all with `recursive`).
async fn list_subtree(
    client: &Client,
    discovery: &Discovery,
) -> Result<Vec<TenantInfo>, DiscoveryError> {
    let error = |source| DiscoveryError {
        parent_id: discovery.parent_id.clone(),
        source,
    };
    let mut found = Vec::new();
    let mut visited: HashSet<String> = HashSet::from([discovery.parent_id.clone()]);
    let mut queue = VecDeque::from([discovery.parent_id.clone()]);
    while let Some(parent) = queue.pop_front() {
        let mut cursor: Option<String> = None;
        let mut cursors_seen = HashSet::new();
        for _ in 0..MAX_PAGES {
            let page = client
                .tenant_children(&parent, cursor.as_deref())
                .await
                .map_err(error)?;
            let empty = page.tenants.is_empty();
            for mut tenant in page.tenants {
                // Names and ids go into folder names and every record: a server that echoes a
                // credential there must not get it written (a non-UUID id is refused anyway).
                tenant.id = client.scrub(&tenant.id);
                tenant.name = tenant.name.as_deref().map(|name| client.scrub(name));
                let id = tenant.id.trim().to_ascii_lowercase();
                if !visited.insert(id.clone()) {
                    continue;
                }
                let container = matches!(tenant.kind.as_deref(), Some("partner" | "folder"));
                if discovery.recursive && container {
                    queue.push_back(id);
                }
                found.push(tenant);
            }
            cursor = match page.next {
                Some(next) if !empty && cursors_seen.insert(next.clone()) => Some(next),
                _ => None,
            };
            if cursor.is_none() {
                break;
            }
        }
    }
    Ok(found)
}

/// Decides, per listed tenant, whether it is reported, and builds the final tenant list.
pub(crate) fn merge(job: &Job, listed: &[Vec<TenantInfo>]) -> Expansion {
    let mut taken: HashSet<String> = job.tenants.iter().map(|t| t.id.clone()).collect();
    let mut dir_names: HashSet<String> = job
        .tenants
        .iter()
        .map(|t| t.dir_name.to_lowercase())
        .collect();
    let mut records = Vec::with_capacity(listed.len());
    let mut expanded: Vec<Vec<Tenant>> = Vec::with_capacity(listed.len());
    for (discovery, tenants) in job.discoveries.iter().zip(listed) {
        let mut sorted: Vec<&TenantInfo> = tenants.iter().collect();
        sorted.sort_by_key(|t| (display_name(t).to_lowercase(), t.id.to_ascii_lowercase()));
        let mut record = DiscoveryRecord {
            children_of: discovery.parent_id.clone(),
            recursive: discovery.recursive,
            kinds: discovery.kinds.clone(),
            tenants: Vec::with_capacity(sorted.len()),
        };
        let mut children = Vec::new();
        for info in sorted {
            let id = info.id.trim().to_ascii_lowercase();
            let name = display_name(info);
            // The id goes into folder names, the resume journal and API paths: only the
            // platform's UUIDs are taken (anything else is a broken or hostile server).
            let reason = (!is_uuid(&id))
                .then(|| "its id is not a UUID".to_owned())
                .or_else(|| exclusion(discovery, info, &id, &name))
                .or_else(|| {
                    (!taken.insert(id.clone())).then(|| {
                        if job.tenants.iter().any(|t| t.id == id) {
                            "listed by id in the job file".to_owned()
                        } else {
                            "already found by an earlier children_of entry".to_owned()
                        }
                    })
                });
            if reason.is_none() {
                let dir_name = unique_dir_name(&mut dir_names, &safe_component(&name), &id);
                children.push(Tenant {
                    id: id.clone(),
                    name: name.clone(),
                    dir_name,
                    ..discovery.template.clone()
                });
            }
            record.tenants.push(DiscoveredTenant {
                // Bounded: a server could send megabytes of id.
                id: if is_uuid(&id) { id } else { one_line(&id, 80) },
                name,
                kind: info.kind.clone(),
                enabled: info.enabled,
                pricing_mode: info.pricing_mode.clone(),
                included: reason.is_none(),
                reason,
            });
        }
        records.push(record);
        expanded.push(children);
    }
    let mut tenants =
        Vec::with_capacity(job.tenants.len() + expanded.iter().map(Vec::len).sum::<usize>());
    for position in 0..=job.tenants.len() {
        for (discovery, children) in job.discoveries.iter().zip(&mut expanded) {
            if discovery.after == position {
                tenants.append(children);
            }
        }
        if let Some(tenant) = job.tenants.get(position) {
            tenants.push(tenant.clone());
        }
    }
    Expansion { tenants, records }
}

/// A folder name no other tenant of the run has (compared without case, for file systems that
/// ignore it): `base`, else `base-` and more and more of the id, else a counter on top, so that
/// no two reports ever share a path whatever the names and ids.
fn unique_dir_name(taken: &mut HashSet<String>, base: &str, id: &str) -> String {
    let prefixes = [8, 13, 18, 23, id.len()]
        .into_iter()
        .filter_map(|len| id.get(..len.min(id.len())))
        .map(|prefix| format!("{base}-{prefix}"));
    for candidate in std::iter::once(base.to_owned()).chain(prefixes) {
        if taken.insert(candidate.to_lowercase()) {
            return candidate;
        }
    }
    // Only when other tenants took even `base-<whole id>`, e.g. by naming themselves so.
    let mut n: u64 = 2;
    loop {
        let candidate = format!("{base}-{id}-{n}");
        if taken.insert(candidate.to_lowercase()) {
            return candidate;
        }
        n += 1;
    }
}

/// The longest tenant name we keep: it is repeated in log lines, the manifest and the summary.
const MAX_NAME_CHARS: usize = 200;

fn display_name(info: &TenantInfo) -> String {
    let name = info
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map_or_else(|| info.id.trim().to_ascii_lowercase(), str::to_owned);
    if name.chars().count() > MAX_NAME_CHARS {
        name.chars().take(MAX_NAME_CHARS).collect::<String>() + "…"
    } else {
        name
    }
}

/// Why a listed tenant is not reported, if it is not.
fn exclusion(discovery: &Discovery, info: &TenantInfo, id: &str, name: &str) -> Option<String> {
    let kind = info.kind.as_deref().unwrap_or("unknown");
    if !discovery.kinds.iter().any(|k| k.as_str() == kind) {
        return Some(format!("kind {kind} is not in kinds"));
    }
    if !discovery.include.is_empty() && !discovery.include.iter().any(|p| matches(p, id, name)) {
        return Some("matches no include pattern".to_owned());
    }
    if let Some(pattern) = discovery.exclude.iter().find(|p| matches(p, id, name)) {
        return Some(format!("matches exclude pattern `{pattern}`"));
    }
    if info.enabled == Some(false) && !discovery.include_disabled {
        return Some("disabled (set include_disabled: true to report on it)".to_owned());
    }
    if info
        .pricing_mode
        .as_deref()
        .is_some_and(|m| m.eq_ignore_ascii_case("trial"))
        && !discovery.include_trial
    {
        return Some("trial tenant (set include_trial: true to report on it)".to_owned());
    }
    None
}

/// A UUID matches the id; anything else is a case-insensitive name glob (`*`, `?`).
fn matches(pattern: &str, id: &str, name: &str) -> bool {
    let pattern = pattern.to_lowercase();
    if is_uuid(&pattern) {
        return pattern == id;
    }
    glob(
        &pattern.chars().collect::<Vec<_>>(),
        &name.to_lowercase().chars().collect::<Vec<_>>(),
    )
}

fn glob(pattern: &[char], text: &[char]) -> bool {
    // Iterative wildcard matching with backtracking to the last `*`: linear space, no recursion.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(c) if *c == '?' || *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_stay_unique_even_against_names_chosen_to_collide() {
        let id = "11111111-0000-4000-8000-000000000001";
        let mut taken: HashSet<String> = ["twin", "twin-11111111", "twin-11111111-0000"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        let mut made = Vec::new();
        for _ in 0..8 {
            made.push(unique_dir_name(&mut taken, "Twin", id));
        }
        let distinct: HashSet<String> = made.iter().map(|m| m.to_lowercase()).collect();
        assert_eq!(distinct.len(), made.len(), "{made:?}");
        assert_eq!(made[0], "Twin-11111111-0000-4000");
        assert!(made[7].starts_with("Twin-11111111-0000-4000-8000-000000000001-"));
    }

    #[test]
    fn overlong_names_are_cut() {
        let info = TenantInfo {
            id: "11111111-0000-4000-8000-000000000001".into(),
            name: Some("n".repeat(3_000_000)),
            ..TenantInfo::default()
        };
        assert_eq!(display_name(&info).chars().count(), MAX_NAME_CHARS + 1);
    }

    #[test]
    fn globs() {
        let m = |p: &str, t: &str| {
            glob(
                &p.chars().collect::<Vec<_>>(),
                &t.chars().collect::<Vec<_>>(),
            )
        };
        assert!(m("acme*", "acme corp"));
        assert!(m("*corp", "acme corp"));
        assert!(m("a?me", "acme"));
        assert!(m("*", ""));
        assert!(!m("acme", "acme corp"));
        assert!(m("*m*e*", "acme"));
        assert!(!m("*x*", "acme"));
    }

    #[test]
    fn patterns_match_ids_or_names_without_case() {
        let id = "ede9f834-70b3-476c-83d9-736f9f8c7dae";
        assert!(matches("EDE9F834-70B3-476C-83D9-736F9F8C7DAE", id, "Acme"));
        assert!(matches("ac*", id, "Acme"));
        assert!(!matches("0b5e2a3c-1f0e-4c52-9d53-2a1c7b0e9a11", id, "Acme"));
    }
}
