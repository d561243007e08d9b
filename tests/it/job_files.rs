//! Every bad job file of `fixtures/jobs/bad` against the real binary: it is refused (exit 2) with
//! the diagnostics snapshotted here, plain and coloured; and the JSON Schema agrees with
//! `validate` wherever a schema can express the rule. Each fixture's first line says which:
//! `# schema: refuses`, or `# schema: cannot say (why)`.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

const AS_OF: &str = "2026-11-27";

fn bad_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/jobs/bad")
}

/// The bad job files, by name, sorted.
fn bad_fixtures() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(bad_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yml"))
        .collect();
    names.sort();
    assert!(names.len() >= 30, "fixtures missing: {names:?}");
    names
}

/// `acronis-reports validate NAME` in the fixtures folder; returns stderr, which must be a
/// refusal (exit 2).
fn refusal(name: &str, color: bool) -> String {
    let mut cmd = Command::cargo_bin("acronis-reports").unwrap();
    cmd.current_dir(bad_dir())
        .args(["validate", name, "--as-of", AS_OF])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    if color {
        cmd.env("CLICOLOR_FORCE", "1");
    }
    let output = cmd.assert().code(2).get_output().clone();
    assert!(output.stdout.is_empty(), "{name}: printed to stdout");
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn every_bad_job_file_shows_where_and_what_to_write() {
    for name in bad_fixtures() {
        let plain = refusal(&name, false);
        assert!(plain.starts_with("error: "), "{name}:\n{plain}");
        assert!(!plain.contains('\u{1b}'), "{name}: colours in plain text");
        // Every problem but those about the whole file points at a line, with a caret and a fix.
        if !name.starts_with("empty-file") && !name.starts_with("missing-tenants") {
            assert!(plain.contains(&format!("--> {name}:")), "{name}:\n{plain}");
            assert!(plain.contains('^'), "{name}:\n{plain}");
        }
        assert!(plain.contains("= help: "), "{name}: no fix:\n{plain}");
        insta::assert_snapshot!(format!("plain-{name}"), plain);
        let coloured = refusal(&name, true);
        assert!(coloured.contains("\u{1b}["), "{name}: no colours");
        insta::assert_snapshot!(format!("coloured-{name}"), coloured);
    }
}

fn schema_validator() -> jsonschema::Validator {
    let schema =
        serde_json::to_value(acronis_reports::job::json_schema()).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
}

/// The YAML document as the JSON an editor's schema check sees.
fn as_json(text: &str) -> Option<Value> {
    serde_saphyr::from_str::<Value>(text).ok()
}

#[test]
fn the_schema_refuses_what_validate_refuses_where_a_schema_can_say_it() {
    let validator = schema_validator();
    let mut disagreements = Vec::new();
    for name in bad_fixtures() {
        let text = std::fs::read_to_string(bad_dir().join(&name)).unwrap();
        let first = text.lines().next().unwrap_or_default();
        let expressible = match first {
            "# schema: refuses" => true,
            line if line.starts_with("# schema: cannot say (") => false,
            line => panic!("{name}: first line must say what the schema does, not {line:?}"),
        };
        // `validate` refuses every one of them (exit 2).
        refusal(&name, false);
        let schema_refuses = as_json(&text).is_none_or(|json| !validator.is_valid(&json));
        let json_parses = as_json(&text).is_some_and(|v| !v.is_null());
        if expressible && !schema_refuses {
            disagreements.push(format!("{name}: validate refuses, the schema accepts"));
        }
        // The rules a schema cannot say: the file is well-formed JSON-wise and the schema lets
        // it through, so the line says why only validate can tell.
        if !expressible && json_parses && schema_refuses {
            disagreements.push(format!(
                "{name}: marked `cannot say` but the schema refuses it; mark it `refuses`"
            ));
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}

#[test]
fn the_schema_accepts_every_good_job_file() {
    let validator = schema_validator();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for dir in ["examples", "fixtures/ci"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let is_job = path.extension().is_some_and(|e| e == "yml")
                && text.lines().any(|l| l.starts_with("version:"));
            if !is_job {
                continue;
            }
            let json = as_json(&text).unwrap();
            let errors: Vec<String> = validator
                .iter_errors(&json)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
            Command::cargo_bin("acronis-reports")
                .unwrap()
                .current_dir(root)
                .args(["validate", &path.to_string_lossy(), "--as-of", AS_OF])
                .assert()
                .success();
            checked += 1;
        }
    }
    assert!(checked >= 2, "only {checked} good job files");
}

#[test]
fn the_modeline_points_at_this_releases_schema() {
    let output = Command::cargo_bin("acronis-reports")
        .unwrap()
        .args(["schema", "--modeline"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let line = String::from_utf8(output).unwrap();
    let url = concat!("/v", env!("CARGO_PKG_VERSION"), "/schema/job.schema.json");
    assert!(
        line.starts_with("# yaml-language-server: $schema=https://")
            && line.trim_end().ends_with(url),
        "{line}"
    );
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(readme.contains(line.trim_end()), "README lacks {line}");
}

fn stdout_of(args: &[&str]) -> String {
    let output = Command::cargo_bin("acronis-reports")
        .unwrap()
        .args(args)
        .env_clear()
        .env("COLUMNS", "100")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(output).unwrap()
}

#[test]
fn run_help_says_where_the_job_format_is_the_environment_and_the_exit_codes() {
    let help = stdout_of(&["run", "--help"]);
    for needle in [
        "acronis-reports schema",
        "schema --modeline",
        "\"The job file\"",
        "acronis-reports man",
        "ACRONIS_CLIENT_ID",
        "ACRONIS_TOKEN",
        "ACRONIS_BASE_URL",
        "CI_NODE_INDEX",
        "NO_COLOR",
        "Exit status:",
        "nothing was attempted",
    ] {
        assert!(help.contains(needle), "run --help lacks {needle}:\n{help}");
    }
    // Where a command writes no log, its help does not list the logging options.
    for command in ["schema", "completions", "man"] {
        let help = stdout_of(&[command, "--help"]);
        assert!(!help.contains("--log-format"), "{command}:\n{help}");
    }
    assert!(stdout_of(&["validate", "--help"]).contains("--log-format"));
    // The logging options take one line each; the details are in the top-level help only.
    assert!(!help.contains("\"ts\" timestamp"), "{help}");
    assert!(stdout_of(&["--help"]).contains("\"ts\" timestamp"));
    insta::assert_snapshot!("run-help", help);
}

#[test]
fn sandbox_help_lists_every_scenario_key_the_sandbox_reads() {
    let help = stdout_of(&["sandbox", "--help"]);
    let list = help
        .split("A scenario file (YAML) may contain:\n")
        .nth(1)
        .expect("the scenario keys");
    let keys: Vec<&str> = list
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .flat_map(|l| l.trim().split(", "))
        .collect();
    assert!(keys.len() >= 15, "{keys:?}");
    for key in keys {
        // An unknown key is refused as such; a known one at most for its (null) value.
        let refused = acronis_reports_sandbox::Scenario::from_yaml_str(&format!("{key}: ~\n"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!refused.contains("unknown field"), "{key}: {refused}");
    }
    insta::assert_snapshot!("sandbox-help", help);
}

#[test]
fn the_man_page_has_the_sections_a_reader_looks_for_and_names_no_missing_page() {
    let page = stdout_of(&["man"]);
    for section in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH OPTIONS",
        ".SH COMMANDS",
        ".SH ENVIRONMENT",
        ".SH EXIT STATUS",
        ".SH FILES",
        ".SH EXAMPLES",
    ] {
        assert!(page.contains(section), "man lacks {section}:\n{page}");
    }
    // Only one page is shipped, so no `acronis-reports-run(1)` and the like.
    assert!(
        !page.contains("\\-run(1)") && !page.contains("(1)\n"),
        "{page}"
    );
    for command in [
        "run", "validate", "plan", "verify", "compare", "sandbox", "schema", "merge",
    ] {
        assert!(
            page.contains(&format!("\\fBacronis\\-reports {command}\\fR")),
            "man lacks {command}"
        );
    }
    insta::assert_snapshot!("man", page);
}
