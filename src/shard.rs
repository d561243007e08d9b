//! Sharding: splitting one job's plan into N parts that separate CI jobs run (`run --shard I/N`,
//! or GitLab's `CI_NODE_INDEX`/`CI_NODE_TOTAL`), to be put back together by [`crate::merge`].
//!
//! A report's shard depends only on its identity — tenant id, period start and end, kind and
//! level — and on the set of identities in the plan; never on where the report is in the list,
//! on tenant names, formats or other options. The reports are ordered by the SHA-256 of their
//! identity and that order is cut into N contiguous runs of ⌊n/N⌋ or ⌈n/N⌉ reports
//! (shard k of N, 0-based, takes ranks ⌊k·n/N⌋ up to ⌊(k+1)·n/N⌋), so:
//!
//! - **deterministic**: the same job file (the same set of reports) and N give every CI job the
//!   same assignment, on any machine, in any list order;
//! - **balanced**: shard sizes differ by at most one report, whatever n and N (a shard is empty
//!   only when there are fewer reports than shards);
//! - **stable**: adding or removing one report moves at most N − 1 of the other reports to
//!   another shard (at most one across each boundary between neighbouring shards in hash
//!   order), and reordering, renaming or changing the formats or options of tenants moves none.
//!
//! Two reports with the same identity cannot be in one plan (the job file refuses them); if
//! they were, the one earlier in the plan would sort first.

use sha2::{Digest, Sha256};

use crate::period::Period;
use crate::plan::{Plan, ReportRequest};
use crate::report::{ReportKind, ReportLevel};
use crate::results::ReportResult;

/// The variables GitLab sets for each job of `parallel: N` (1-based index, and the count).
pub(crate) const CI_NODE_INDEX: &str = "CI_NODE_INDEX";
pub(crate) const CI_NODE_TOTAL: &str = "CI_NODE_TOTAL";

/// Which shard to run: `index` of `total`, 1-based, `1 <= index <= total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardSpec {
    pub(crate) index: u32,
    pub(crate) total: u32,
}

impl std::fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.total)
    }
}

/// What decides a report's shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Identity<'a> {
    pub(crate) tenant_id: &'a str,
    pub period: Period,
    pub(crate) kind: ReportKind,
    pub(crate) level: ReportLevel,
}

impl<'a> Identity<'a> {
    pub(crate) fn of_request(request: &'a ReportRequest) -> Self {
        Self {
            tenant_id: &request.tenant_id,
            period: request.period,
            kind: request.kind,
            level: request.level,
        }
    }

    pub(crate) fn of_result(result: &'a ReportResult) -> Self {
        Self {
            tenant_id: &result.tenant_id,
            period: result.period,
            kind: result.kind,
            level: result.level,
        }
    }

    /// SHA-256 of `tenant_id \n start \n end \n kind \n level` (dates as YYYY-MM-DD, kind and
    /// level as in the job file). Part of the sharding contract: changing it reshuffles shards.
    pub(crate) fn digest(&self) -> [u8; 32] {
        let text = format!(
            "{}\n{}\n{}\n{}\n{}",
            self.tenant_id,
            self.period.start,
            self.period.end,
            self.kind.as_str(),
            self.level.as_str()
        );
        Sha256::digest(text.as_bytes()).into()
    }
}

/// The shard (1-based) of each identity, in the order given, for `total` shards.
///
/// # Panics
/// When `total` is 0.
pub(crate) fn assign(identities: &[Identity<'_>], total: u32) -> Vec<u32> {
    assert!(total >= 1, "there must be at least one shard");
    let n = identities.len();
    let mut order: Vec<(usize, [u8; 32])> = identities
        .iter()
        .map(Identity::digest)
        .enumerate()
        .collect();
    // Stable: equal digests (impossible in a valid job) keep their plan order.
    order.sort_by_key(|&(_, digest)| digest);
    let mut shards = vec![0; n];
    for (rank, &(position, _)) in order.iter().enumerate() {
        // Shard k (0-based) takes ranks ⌊k·n/N⌋ ≤ rank < ⌊(k+1)·n/N⌋, so the shard of a rank
        // is the largest k with k·n < (rank+1)·N. In u128, nothing can overflow.
        let k = ((rank as u128 + 1) * u128::from(total) - 1) / n as u128;
        shards[position] = k as u32 + 1;
    }
    shards
}

/// The part of `plan` that shard `index` of `total` (1-based) runs, in plan order. Each report
/// keeps its [`ReportRequest::index`] in the whole plan.
///
/// # Panics
/// Unless `1 <= index <= total`; [`parse`] and [`from_ci_env`] only give such values.
pub(crate) fn select(plan: &Plan, index: u32, total: u32) -> Plan {
    assert!(
        (1..=total).contains(&index),
        "shard {index}/{total} does not exist"
    );
    let identities: Vec<Identity<'_>> = plan.reports.iter().map(Identity::of_request).collect();
    let shards = assign(&identities, total);
    let reports = plan
        .reports
        .iter()
        .zip(shards)
        .filter(|(_, shard)| *shard == index)
        .map(|(request, _)| request.clone())
        .collect();
    Plan { reports }
}

/// Why a shard, given after `--shard` or by the CI's variables, cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// The text is not of the form `I/N`.
    #[error("`{0}` is not a shard; write it as I/N, e.g. 2/7 for the second of 7 shards")]
    NotAShard(String),
    /// One number of `I/N` is wrong.
    #[error("`{text}`: the {part} {problem}; write it as I/N, e.g. 2/7")]
    Part {
        /// The whole text as given.
        text: String,
        /// Which number, in words (e.g. `shard index (before the /)`).
        part: &'static str,
        /// What is wrong with it.
        problem: CountProblem,
    },
    /// A CI variable holding the index or the count is wrong.
    #[error("{variable}=`{value}` is not {what}: it {problem}")]
    Variable {
        /// The variable's name (e.g. `CI_NODE_INDEX`).
        variable: &'static str,
        /// Its value.
        value: String,
        /// What it should be (e.g. `a shard index`).
        what: &'static str,
        /// What is wrong with it.
        problem: CountProblem,
    },
    /// `context` names where the pair was read (`` `2/1` ``, or the CI's variables).
    #[error("{context}: {problem}")]
    Range {
        /// Where the pair was read.
        context: String,
        /// What is wrong with the pair.
        problem: RangeProblem,
    },
}

/// What is wrong with one number of a shard.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CountProblem {
    /// No number where one is needed.
    #[error("is missing")]
    Missing,
    /// Not a whole number.
    #[error("must be a whole number, not `{0}`")]
    NotWhole(String),
    /// Beyond what a shard count can be.
    #[error("is too large (`{0}`)")]
    TooLarge(String),
}

/// What is wrong with an index and a count together.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RangeProblem {
    /// A count of 0.
    #[error("there must be at least 1 shard")]
    NoShards,
    /// An index of 0: shards count from 1.
    #[error("shards are numbered from 1 (like CI_NODE_INDEX): use 1/{total} to {total}/{total}")]
    FromOne {
        /// The count.
        total: u32,
    },
    /// An index above the count.
    #[error("there is no shard {index} of {total}: the index must be between 1 and {total}")]
    Beyond {
        /// The index asked for.
        index: u32,
        /// The count.
        total: u32,
    },
}

/// Reads `I/N` as written after `--shard`: 1 ≤ I ≤ N.
pub fn parse(text: &str) -> Result<ShardSpec, ShardError> {
    let Some((index, total)) = text.trim().split_once('/') else {
        return Err(ShardError::NotAShard(text.to_owned()));
    };
    let part = |part: &'static str| {
        move |problem| ShardError::Part {
            text: text.to_owned(),
            part,
            problem,
        }
    };
    let total = parse_count(total).map_err(part("number of shards (after the /)"))?;
    let index = parse_count(index).map_err(part("shard index (before the /)"))?;
    check(index, total).map_err(|problem| ShardError::Range {
        context: format!("`{text}`"),
        problem,
    })
}

/// The shard GitLab's `parallel:` gives this job, when both `CI_NODE_INDEX` and `CI_NODE_TOTAL`
/// are set (and not empty); `None` otherwise. `env` looks a variable up. An invalid value is
/// an error that names the variable.
pub(crate) fn from_ci_env(
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<ShardSpec>, ShardError> {
    let value = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let (Some(index_text), Some(total_text)) = (value(CI_NODE_INDEX), value(CI_NODE_TOTAL)) else {
        return Ok(None);
    };
    let variable = |variable: &'static str, value: &str, what: &'static str| {
        let value = value.to_owned();
        move |problem| ShardError::Variable {
            variable,
            value,
            what,
            problem,
        }
    };
    let total = parse_count(&total_text).map_err(variable(
        CI_NODE_TOTAL,
        &total_text,
        "a number of shards",
    ))?;
    let index =
        parse_count(&index_text).map_err(variable(CI_NODE_INDEX, &index_text, "a shard index"))?;
    check(index, total)
        .map(Some)
        .map_err(|problem| ShardError::Range {
            context: format!("{CI_NODE_INDEX}={index_text} with {CI_NODE_TOTAL}={total_text}"),
            problem,
        })
}

fn parse_count(text: &str) -> Result<u32, CountProblem> {
    let text = text.trim();
    if text.is_empty() {
        return Err(CountProblem::Missing);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CountProblem::NotWhole(text.to_owned()));
    }
    text.parse()
        .map_err(|_| CountProblem::TooLarge(text.to_owned()))
}

fn check(index: u32, total: u32) -> Result<ShardSpec, RangeProblem> {
    if total == 0 {
        return Err(RangeProblem::NoShards);
    }
    if index == 0 {
        return Err(RangeProblem::FromOne { total });
    }
    if index > total {
        return Err(RangeProblem::Beyond { index, total });
    }
    Ok(ShardSpec { index, total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::SkuPolicy;
    use crate::report::Format;
    use jiff::civil::date;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn request(tenant: &str, month: i8, index: usize) -> ReportRequest {
        let start = date(2026, month, 1);
        ReportRequest {
            tenant_id: tenant.to_owned(),
            tenant_name: format!("name-{tenant}"),
            period: Period {
                start,
                end: start.last_of_month(),
            },
            kind: ReportKind::UsageSummary,
            level: ReportLevel::DirectPartners,
            formats: vec![Format::CsvV2, Format::JsonV2],
            hide_zero_usage: false,
            show_skus: true,
            sku_check: SkuPolicy::Required,
            dir: format!("2026-{month:02}/name-{tenant}"),
            index,
        }
    }

    /// A plan of `tenants` × `months`, indexed in list order.
    fn plan_of(tenants: &[String], months: &[i8]) -> Plan {
        let mut reports = Vec::new();
        for tenant in tenants {
            for &month in months {
                reports.push(request(tenant, month, reports.len()));
            }
        }
        Plan { reports }
    }

    fn tenant(i: u32) -> String {
        format!("00000000-0000-4000-8000-{i:012}")
    }

    fn key(r: &ReportRequest) -> (String, Period) {
        (r.tenant_id.clone(), r.period)
    }

    /// Shard (1-based) of every report of the plan, by identity.
    fn shard_map(plan: &Plan, total: u32) -> BTreeMap<(String, Period), u32> {
        let identities: Vec<Identity<'_>> = plan.reports.iter().map(Identity::of_request).collect();
        plan.reports
            .iter()
            .map(key)
            .zip(assign(&identities, total))
            .collect()
    }

    fn assert_partition(plan: &Plan, total: u32) {
        let mut seen = BTreeSet::new();
        let mut sizes = Vec::new();
        for index in 1..=total {
            let part = select(plan, index, total);
            sizes.push(part.reports.len());
            // Plan order, original indices.
            assert!(part.reports.windows(2).all(|w| w[0].index < w[1].index));
            for r in &part.reports {
                assert_eq!(plan.reports[r.index], *r);
                assert!(seen.insert(r.index), "report {} in two shards", r.index);
            }
        }
        assert_eq!(seen.len(), plan.reports.len(), "a report is in no shard");
        let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(max - min <= 1, "sizes {sizes:?}");
    }

    #[test]
    fn parses_i_of_n() {
        assert_eq!(parse("2/7"), Ok(ShardSpec { index: 2, total: 7 }));
        assert_eq!(parse("1/1"), Ok(ShardSpec { index: 1, total: 1 }));
        assert_eq!(parse(" 7/7 "), Ok(ShardSpec { index: 7, total: 7 }));
        for (bad, needle) in [
            ("0/3", "numbered from 1"),
            ("4/3", "no shard 4 of 3"),
            ("1/0", "at least 1 shard"),
            ("3", "write it as I/N"),
            ("a/3", "shard index (before the /) must be a whole number"),
            ("1/", "number of shards (after the /) is missing"),
            ("-1/3", "whole number"),
            ("1/99999999999", "too large"),
        ] {
            let error = parse(bad).unwrap_err().to_string();
            assert!(error.contains(needle), "{bad}: {error}");
        }
    }

    #[test]
    fn reads_gitlab_variables_only_when_both_are_set() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(from_ci_env(env(&[])), Ok(None));
        // GitLab sets CI_NODE_TOTAL=1 for every job; without an index it is no shard.
        assert_eq!(from_ci_env(env(&[("CI_NODE_TOTAL", "1")])), Ok(None));
        assert_eq!(from_ci_env(env(&[("CI_NODE_INDEX", "2")])), Ok(None));
        assert_eq!(
            from_ci_env(env(&[("CI_NODE_INDEX", "2"), ("CI_NODE_TOTAL", "5")])),
            Ok(Some(ShardSpec { index: 2, total: 5 }))
        );
        let error = from_ci_env(env(&[("CI_NODE_INDEX", "x"), ("CI_NODE_TOTAL", "5")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("CI_NODE_INDEX=`x`"), "{error}");
        let error = from_ci_env(env(&[("CI_NODE_INDEX", "2"), ("CI_NODE_TOTAL", "zero")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("CI_NODE_TOTAL=`zero`"), "{error}");
        let error = from_ci_env(env(&[("CI_NODE_INDEX", "6"), ("CI_NODE_TOTAL", "5")]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("CI_NODE_INDEX=6") && error.contains("between 1 and 5"),
            "{error}"
        );
    }

    #[test]
    fn every_shard_of_many_plans_partitions_them() {
        for tenants in [0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 100] {
            let tenants: Vec<String> = (0..tenants).map(tenant).collect();
            let plan = plan_of(&tenants, &[9, 10]);
            for total in (1..=13).chain([64]) {
                assert_partition(&plan, total);
            }
        }
        let plan = plan_of(&(0..300).map(tenant).collect::<Vec<_>>(), &[10]);
        assert_partition(&plan, 7);
    }

    #[test]
    fn one_shard_is_the_whole_plan() {
        let plan = plan_of(&(0..10).map(tenant).collect::<Vec<_>>(), &[9, 10]);
        assert_eq!(select(&plan, 1, 1), plan);
    }

    #[test]
    fn more_shards_than_reports_leaves_some_empty() {
        let plan = plan_of(&[tenant(1), tenant(2)], &[10]);
        assert_partition(&plan, 7);
        let sizes: Vec<usize> = (1..=7).map(|i| select(&plan, i, 7).reports.len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 2);
        let empty = plan_of(&[], &[10]);
        assert!(select(&empty, 3, 7).reports.is_empty());
        // Any number of shards is cheap: the work depends on the reports only.
        assert_eq!(select(&plan, u32::MAX, u32::MAX).reports.len(), 1);
        assert!(select(&plan, 1, u32::MAX).reports.is_empty());
    }

    #[test]
    fn list_order_names_and_options_do_not_matter() {
        let tenants: Vec<String> = (0..40).map(tenant).collect();
        let plan = plan_of(&tenants, &[9, 10]);
        let mut reversed: Vec<String> = tenants.clone();
        reversed.reverse();
        let mut other = plan_of(&reversed, &[10, 9]);
        for r in &mut other.reports {
            r.tenant_name = format!("renamed {}", r.index);
            r.formats = vec![Format::Html];
            r.show_skus = false;
        }
        assert_eq!(shard_map(&plan, 5), shard_map(&other, 5));
    }

    #[test]
    fn the_assignment_is_pinned() {
        // The digest and the cut are part of the contract: a CI matrix whose jobs run different
        // versions of the tool must still agree. Changing either must change this test.
        let plan = plan_of(&(0..8).map(tenant).collect::<Vec<_>>(), &[10]);
        let shards: Vec<u32> = assign(
            &plan
                .reports
                .iter()
                .map(Identity::of_request)
                .collect::<Vec<_>>(),
            3,
        );
        assert_eq!(shards, PINNED);
    }

    const PINNED: [u32; 8] = [3, 1, 3, 3, 2, 2, 2, 1];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

        /// For random tenant lists (in random order) and 1..=64 shards: every report is in
        /// exactly one shard, sizes are within one of each other, and `select` gives each shard's
        /// reports in plan order with their indices (checked for two shards per case; the unit
        /// tests check every shard of many plans).
        #[test]
        fn shards_partition_the_plan_and_are_balanced(
            ids in proptest::collection::btree_set(any::<u32>(), 0..300)
                .prop_map(|ids| ids.into_iter().collect::<Vec<_>>())
                .prop_shuffle(),
            months in proptest::sample::subsequence(vec![7i8, 8, 9, 10], 1..=4),
            pick in any::<u32>(),
            total in 1u32..=64,
        ) {
            let tenants: Vec<String> = ids.into_iter().map(tenant).collect();
            let plan = plan_of(&tenants, &months);
            let identities: Vec<Identity<'_>> =
                plan.reports.iter().map(Identity::of_request).collect();
            let shards = assign(&identities, total);
            prop_assert_eq!(shards.len(), plan.reports.len());
            let mut sizes = vec![0usize; total as usize];
            for &shard in &shards {
                prop_assert!((1..=total).contains(&shard));
                sizes[shard as usize - 1] += 1;
            }
            let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            prop_assert!(max - min <= 1, "sizes {:?}", sizes);
            for index in [1 + pick % total, total] {
                let expected: Vec<ReportRequest> = plan
                    .reports
                    .iter()
                    .zip(&shards)
                    .filter(|(_, shard)| **shard == index)
                    .map(|(request, _)| request.clone())
                    .collect();
                prop_assert_eq!(select(&plan, index, total).reports, expected);
            }
        }

        /// Adding a tenant anywhere in the list moves at most N − 1 other reports per report it
        /// adds, and none when there is a single shard.
        #[test]
        fn adding_a_tenant_moves_few_others(
            ids in proptest::collection::btree_set(1u32.., 1..200),
            at in any::<usize>(),
            total in 1u32..=64,
        ) {
            let tenants: Vec<String> = ids.into_iter().map(tenant).collect();
            let months = [9, 10];
            let before = shard_map(&plan_of(&tenants, &months), total);
            let mut grown = tenants.clone();
            grown.insert(at % (tenants.len() + 1), tenant(0));
            let after = shard_map(&plan_of(&grown, &months), total);
            let moved = before.iter().filter(|(k, shard)| after[*k] != **shard).count();
            prop_assert!(moved <= months.len() * (total as usize - 1), "{moved} moved");
        }
    }
}
