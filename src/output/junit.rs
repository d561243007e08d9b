//! The run as a JUnit XML report (GitLab's `artifacts:reports:junit`, Jenkins, Azure
//! Pipelines): a pure function from the run's record to text.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use crate::period::Period;
use crate::results::{ReportResult, RunResult, SkuStatus, Status};

/// A JUnit report: one test suite per period (in date order), one test case per report
/// (`classname` the period, `name` the tenant). A failed report is a `<failure>` whose message
/// is the report's error; its type says whether a required check failed it (`sku_check`) or
/// something else (`report`). Warnings go to the case's `system-err`, its files to `system-out`.
pub(crate) fn render(result: &RunResult) -> io::Result<String> {
    // A JUnit report is one document with a case per report, built whole before it is written.
    let mut periods: BTreeMap<Period, Vec<ReportResult>> = BTreeMap::new();
    for report in result.reports.iter() {
        let report = report?;
        periods.entry(report.period).or_default().push(report);
    }
    let mut junit = Report::new("acronis-reports");
    let millis = result.finished_at.as_millisecond() - result.started_at.as_millisecond();
    junit.set_time(Duration::from_millis(millis.max(0).unsigned_abs()));
    for (period, mut reports) in periods {
        reports.sort_by(|a, b| {
            (&a.tenant_name, &a.tenant_id, a.kind, a.level).cmp(&(
                &b.tenant_name,
                &b.tenant_id,
                b.kind,
                b.level,
            ))
        });
        let label = period.label();
        let mut suite = TestSuite::new(label.as_str());
        let mut per_name: HashMap<&str, usize> = HashMap::new();
        for report in &reports {
            *per_name.entry(&report.tenant_name).or_default() += 1;
        }
        for report in &reports {
            // Two reports of one tenant and period (another kind or level) need distinct names.
            let name = if per_name[report.tenant_name.as_str()] > 1 {
                format!("{} ({}, {})", report.tenant_name, report.kind, report.level)
            } else {
                report.tenant_name.clone()
            };
            suite.add_test_case(test_case(report, &name, &label));
        }
        junit.add_test_suite(suite);
    }
    Ok(junit
        .to_string()
        .expect("a JUnit report in memory always serialises"))
}

fn test_case(report: &ReportResult, name: &str, period: &str) -> TestCase {
    let status = match report.status {
        Status::Ok => TestCaseStatus::success(),
        Status::Failed => {
            let check_failed = report
                .files
                .iter()
                .any(|f| f.sku_check.status == SkuStatus::Missing);
            let error = report.error.as_deref().unwrap_or("no reason was recorded");
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status
                .set_message(crate::api::one_line(error, 1000))
                .set_type(if check_failed { "sku_check" } else { "report" })
                .set_description(format!(
                    "{} ({}), period {} ({} to {}), {} / {}: {error}",
                    report.tenant_name,
                    report.tenant_id,
                    period,
                    report.period.start,
                    report.period.end,
                    report.kind,
                    report.level
                ));
            status
        }
    };
    let mut case = TestCase::new(name, status);
    case.set_classname(period);
    case.add_property(Property::new("tenant_id", &report.tenant_id));
    if let Some(id) = &report.report_id {
        case.add_property(Property::new("report_id", id));
    }
    case.add_property(Property::new("kind", report.kind.as_str()));
    case.add_property(Property::new("level", report.level.as_str()));
    let mut files = String::new();
    for file in &report.files {
        let check = match file.sku_check.status {
            SkuStatus::Ok => format!("SKU check ok ({} rows)", file.sku_check.rows),
            SkuStatus::Missing => format!(
                "SKU check: {} of {} rows lack a SKU",
                file.sku_check.rows_without_sku, file.sku_check.rows
            ),
            SkuStatus::Skipped => "SKU check skipped".to_owned(),
        };
        let _ = writeln!(
            files,
            "{}  {} bytes  sha256 {}  {check}",
            file.path, file.bytes, file.sha256
        );
    }
    if !files.is_empty() {
        case.set_system_out(files);
    }
    if !report.warnings.is_empty() {
        case.set_system_err(report.warnings.join("\n") + "\n");
    }
    case
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ReportKind;
    use crate::results::SkuCheck;
    use crate::results::fixtures::{failed_report, october, ok_report, run_of};
    use jiff::civil::date;

    #[test]
    fn junit_for_a_clean_and_a_failed_report() {
        let november = Period {
            start: date(2026, 11, 1),
            end: date(2026, 11, 15),
        };
        let run = run_of(vec![
            failed_report(
                "globex",
                november,
                "HTTP 404: \"tenant\" <not> found & gone",
            ),
            ok_report("acme", october()),
        ]);
        let xml = render(&run).unwrap();
        assert_eq!(
            xml,
            r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="acronis-reports" tests="2" skipped="0" failures="1" errors="0" time="250.000">
    <testsuite name="2026-10" tests="1" skipped="0" errors="0" failures="0">
        <testcase name="acme" classname="2026-10">
            <properties>
                <property name="tenant_id" value="acme-id"/>
                <property name="report_id" value="acme-report"/>
                <property name="kind" value="usage_summary"/>
                <property name="level" value="direct_partners"/>
            </properties>
            <system-out>2026-10/acme/usage_summary.csv_v2_0.csv  100 bytes  sha256 abababababababababababababababababababababababababababababababab  SKU check ok (3 rows)
</system-out>
        </testcase>
    </testsuite>
    <testsuite name="2026-11-01_2026-11-15" tests="1" skipped="0" errors="0" failures="1">
        <testcase name="globex" classname="2026-11-01_2026-11-15">
            <properties>
                <property name="tenant_id" value="globex-id"/>
                <property name="report_id" value="globex-report"/>
                <property name="kind" value="usage_summary"/>
                <property name="level" value="direct_partners"/>
            </properties>
            <failure message="HTTP 404: &quot;tenant&quot; &lt;not&gt; found &amp; gone" type="report">globex (globex-id), period 2026-11-01_2026-11-15 (2026-11-01 to 2026-11-15), usage_summary / direct_partners: HTTP 404: &quot;tenant&quot; &lt;not&gt; found &amp; gone</failure>
        </testcase>
    </testsuite>
</testsuites>
"#
        );
    }

    #[test]
    fn a_failed_required_check_is_a_sku_check_failure_and_warnings_go_to_system_err() {
        let mut checked = ok_report("acme", october());
        checked.status = Status::Failed;
        checked.error =
            Some("2 of 3 rows in the csv_v2_0 file lack a SKU (checks.skus: required)".into());
        checked.files[0].sku_check = SkuCheck {
            status: SkuStatus::Missing,
            rows: 3,
            rows_without_sku: 2,
            column: Some("sku".into()),
        };
        let mut warned = ok_report("globex", october());
        warned.warnings.push("1 of 3 rows lack a SKU".into());
        let xml = render(&run_of(vec![checked, warned])).unwrap();
        assert!(xml.contains(r#"type="sku_check""#), "{xml}");
        assert!(xml.contains("SKU check: 2 of 3 rows lack a SKU"), "{xml}");
        assert!(
            xml.contains("<system-err>1 of 3 rows lack a SKU\n</system-err>"),
            "{xml}"
        );
        assert!(
            xml.contains(r#"tests="2" skipped="0" failures="1""#),
            "{xml}"
        );
    }

    #[test]
    fn two_reports_of_one_tenant_and_period_get_distinct_names() {
        let mut daily = ok_report("acme", october());
        daily.kind = ReportKind::UsageDaily;
        let xml = render(&run_of(vec![ok_report("acme", october()), daily])).unwrap();
        assert!(
            xml.contains(r#"name="acme (usage_daily, direct_partners)""#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"name="acme (usage_summary, direct_partners)""#),
            "{xml}"
        );
    }

    #[test]
    fn junit_of_no_reports_is_still_a_document() {
        let xml = render(&run_of(vec![])).unwrap();
        assert!(
            xml.contains(r#"<testsuites name="acronis-reports" tests="0""#),
            "{xml}"
        );
    }
}
