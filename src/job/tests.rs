use super::*;
use crate::report::{BillingMeasure, BillingScope};

#[test]
fn byte_sizes_take_units() {
    assert_eq!(ByteSize::parse("8GiB"), Ok(8 << 30));
    assert_eq!(ByteSize::parse("500MB"), Ok(500_000_000));
    assert_eq!(ByteSize::parse("1024"), Ok(1024));
    assert_eq!(ByteSize::parse("7 KiB"), Ok(7 << 10));
    assert!(
        ByteSize::parse("5 parsecs")
            .unwrap_err()
            .contains("not a size unit")
    );
    assert!(ByteSize::parse("99999999999TiB").is_err());
    assert!(ByteSize::parse("GiB").is_err());
}
use jiff::civil::date;

const ACME: &str = "ede9f834-70b3-476c-83d9-736f9f8c7dae";

fn parse_text(text: &str) -> Result<Job, JobError> {
    parse(Path::new("job.yml"), text.as_bytes(), date(2026, 11, 27))
}

fn problems(text: &str) -> String {
    parse_text(text)
        .expect_err("job should be refused")
        .to_string()
}

#[test]
fn minimal_job_gets_defaults() {
    let job = parse_text(&format!("version: 1\ntenants:\n  - id: {ACME}\n")).unwrap();
    let tenant = &job.tenants[0];
    assert_eq!(tenant.name, ACME);
    assert_eq!(tenant.formats, vec![Format::CsvV2, Format::JsonV2]);
    assert_eq!(tenant.periods[0].label(), "2026-10");
    assert_eq!(job.concurrency, 4);
    assert_eq!(job.polling.timeout, Duration::from_secs(1800));
    assert_eq!(job.output_dir, PathBuf::from("billing-reports"));
}

#[test]
fn tenant_overrides_defaults() {
    let job = parse_text(&format!(
            "version: 1\ndefaults:\n  kind: usage_daily\n  formats: [json_v2_0]\n  periods: [2026-09]\ntenants:\n  - id: {ACME}\n    name: acme\n    formats: [csv_v2_0]\n    periods: [{{start: 2026-11-01, end: 2026-11-15}}]\n"
        ))
        .unwrap();
    let tenant = &job.tenants[0];
    assert_eq!(tenant.kind, ReportKind::UsageDaily);
    assert_eq!(tenant.formats, vec![Format::CsvV2]);
    assert_eq!(tenant.periods[0].label(), "2026-11-01_2026-11-15");
}

#[test]
fn unknown_key_names_position_and_nearest_key() {
    let message = problems(&format!(
        "version: 1\ntenants:\n  - id: {ACME}\n    fromats: [csv]\n"
    ));
    assert!(message.contains("--> job.yml:4:5"), "{message}");
    assert!(
        message.contains("fromats") && message.contains("did you mean `formats`?"),
        "{message}"
    );
}

#[test]
fn unknown_kind_lists_valid_kinds() {
    let message = problems(&format!(
        "version: 1\ndefaults:\n  kind: usage_sumary\ntenants:\n  - id: {ACME}\n"
    ));
    assert!(message.contains("--> job.yml:3"), "{message}");
    assert!(
        message.contains("usage_daily") && message.contains("did you mean `usage_summary`?"),
        "{message}"
    );
}

#[test]
fn level_itself_is_accepted_and_suggested() {
    let job = parse_text(&format!(
        "version: 1\ndefaults:\n  level: itself\ntenants:\n  - id: {ACME}\n"
    ))
    .unwrap();
    assert_eq!(job.tenants[0].level, ReportLevel::Itself);
    let message = problems(&format!(
        "version: 1\ndefaults:\n  level: itsef\ntenants:\n  - id: {ACME}\n"
    ));
    assert!(message.contains("--> job.yml:3"), "{message}");
    assert!(message.contains("did you mean `itself`?"), "{message}");
}

#[test]
fn billing_rule_defaults_to_the_vendors_and_can_be_overridden() {
    let job = parse_text(&format!("version: 1\ntenants:\n  - id: {ACME}\n")).unwrap();
    assert_eq!(job.billing, BillingRule::default());
    let job = parse_text(&format!(
            "version: 1\nbilling:\n  scope: total\n  delta_items: [pw_compute_points, pw_base_adv_dr_compute_points, pw_compute_points]\ntenants:\n  - id: {ACME}\n"
        ))
        .unwrap();
    assert_eq!(job.billing.scope, BillingScope::Total);
    assert_eq!(job.billing.measure, BillingMeasure::Auto);
    assert_eq!(
        job.billing.delta_items,
        ["pw_compute_points", "pw_base_adv_dr_compute_points"]
    );
}

#[test]
fn billing_settings_that_cannot_apply_are_refused_with_their_place() {
    let message = problems(&format!(
        "version: 1\nbilling:\n  measure: absolute\n  delta_items: [compute_points]\ntenants:\n  - id: {ACME}\n"
    ));
    assert!(message.contains("--> job.yml:4"), "{message}");
    assert!(
        message.contains("only applies with `measure: auto`"),
        "{message}"
    );
    let message = problems(&format!(
        "version: 1\nbilling:\n  delta_items: [\" \"]\ntenants:\n  - id: {ACME}\n"
    ));
    assert!(
        message.contains("an empty name in billing.delta_items"),
        "{message}"
    );
    let message = problems(&format!(
        "version: 1\nbilling:\n  scope: customer\ntenants:\n  - id: {ACME}\n"
    ));
    assert!(message.contains("--> job.yml:3"), "{message}");
    assert!(message.contains("production"), "{message}");
}

#[test]
fn bare_number_duration_asks_for_a_unit() {
    let message = problems(&format!(
        "version: 1\npolling:\n  timeout: 30\ntenants:\n  - id: {ACME}\n"
    ));
    assert!(message.contains("--> job.yml:3"), "{message}");
    assert!(message.contains("30s"), "{message}");
}

#[test]
fn future_and_reversed_periods_name_tenant_and_line() {
    let message = problems(&format!(
        "version: 1\ntenants:\n  - id: {ACME}\n    name: acme\n    periods:\n      - 2026-12\n      - {{start: 2026-10-10, end: 2026-10-01}}\n"
    ));
    assert!(
        message.contains("job.yml:6:")
            && message.contains("tenant acme")
            && message.contains("future"),
        "{message}"
    );
    assert!(
        message.contains("job.yml:7:") && message.contains("swap"),
        "{message}"
    );
}

#[test]
fn month_to_date_on_the_first_names_the_place_and_previous_month() {
    let text = format!(
        "version: 1\ntenants:\n  - id: {ACME}\n    name: acme\n    periods: [previous_month, month_to_date]\n"
    );
    let message = parse(Path::new("job.yml"), text.as_bytes(), date(2026, 12, 1))
        .expect_err("refused on the first")
        .to_string();
    assert!(message.contains("--> job.yml:5:31"), "{message}");
    assert!(
        message.contains("tenant acme") && message.contains("use previous_month"),
        "{message}"
    );
    let job = parse(Path::new("job.yml"), text.as_bytes(), date(2026, 12, 2)).unwrap();
    assert_eq!(job.tenants[0].periods[1].label(), "2026-12-01_2026-12-01");
}

#[test]
fn duplicate_keys_and_malformed_yaml_are_refused_with_position() {
    let message = problems(&format!(
        "version: 1\nversion: 1\ntenants:\n  - id: {ACME}\n"
    ));
    assert!(
        message.contains("job.yml:2:") && message.to_lowercase().contains("duplicate"),
        "{message}"
    );
    let message = problems("version: 1\ntenants: [\n");
    assert!(message.contains("--> job.yml"), "{message}");
}

#[test]
fn alias_bomb_is_refused_quickly() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    text.push_str(&format!("version: 1\ntenants:\n  - id: {ACME}\n"));
    let started = std::time::Instant::now();
    let message = problems(&text);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(message.contains("--> job.yml"), "{message}");
}

#[test]
fn bad_ids_and_duplicate_names_are_reported_together() {
    let message = problems(&format!(
        "version: 1\ntenants:\n  - id: acme\n  - id: {ACME}\n    name: Acme\n  - id: 0b5e2a3c-1f0e-4c52-9d53-2a1c7b0e9a11\n    name: acme\n"
    ));
    assert!(
        message.contains("job.yml:3:") && message.contains("not a UUID"),
        "{message}"
    );
    assert!(
        message.contains("job.yml:7:") && message.contains("already used on line 5"),
        "{message}"
    );
}

#[test]
fn independent_errors_are_reported_together_with_key_paths_and_fixes() {
    let message = problems(&format!(
        "version: 1\ndefaults:\n  fromats: [csv_v2_0]\n  kind: summary\npolling:\n  timeout: 120\ntenants:\n  - id: acme\n  - id: {ACME}\n    formats: [csv, json_v2]\n"
    ));
    for needle in [
        "--> job.yml:3:3",
        "in `defaults.fromats`",
        "did you mean `formats`?",
        "--> job.yml:4:9",
        "did you mean `usage_summary`?",
        "--> job.yml:6:12",
        "in `polling.timeout`",
        "120s",
        "--> job.yml:8:9",
        "in `tenants[0].id`",
        "in `tenants[1].formats[1]`",
        "did you mean `json_v2_0`?",
        "job.yml: 5 problems",
    ] {
        assert!(message.contains(needle), "{needle:?} not in:\n{message}");
    }
    // The next error of the same list item shows once the first is fixed.
    let message = problems(&format!(
        "version: 1\ntenants:\n  - id: {ACME}\n    formats: [csv, json_v2]\n"
    ));
    assert!(
        message.contains("in `tenants[0].formats[1]`")
            && message.contains("did you mean `json_v2_0`?"),
        "{message}"
    );
}

#[test]
fn layout_mistakes_get_plain_words() {
    let message = problems("# nothing yet\n");
    assert!(
        message.contains("the job file is empty") && message.contains("version: 1"),
        "{message}"
    );
    let message = problems(&format!("version: 1\ntenants:\n\t- id: {ACME}\n"));
    assert!(
        message.contains("a tab in the indentation") && message.contains("--> job.yml:3:1"),
        "{message}"
    );
    let message = problems(&format!(
        "version: 1\ntenants:\n  - id: {ACME}\n   name: acme\n"
    ));
    assert!(
        message.contains("the indentation does not match") && message.contains("--> job.yml:4"),
        "{message}"
    );
    let message = problems(&format!(
        "version: 1\ndefaults:\n  periods: previous_month\ntenants:\n  - id: {ACME}\n"
    ));
    assert!(
        message.contains("`defaults.periods` takes a list")
            && message.contains("`periods: [previous_month]`"),
        "{message}"
    );
}

#[test]
fn coloured_rendering_only_adds_styles() {
    let error = parse_text(&format!(
        "version: 1\npolling:\n  timeout: 120\ntenants:\n  - id: {ACME}\n"
    ))
    .expect_err("refused");
    let coloured = error.render(true);
    assert!(coloured.contains("\u{1b}["), "{coloured}");
    let stripped: String = {
        let mut out = String::new();
        let mut chars = coloured.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    };
    assert_eq!(stripped, error.to_string());
}

#[test]
fn schema_describes_every_field() {
    let schema = serde_json::to_value(json_schema()).unwrap();
    let text = schema.to_string();
    for word in [
        "tenants",
        "initial_interval",
        "usage_breakdown",
        "json_v2_0",
        "previous_month",
    ] {
        assert!(text.contains(word), "schema lacks {word}");
    }
}
