//! Fuzz regressions: every input the fuzzers found must give a result, never a panic.

use super::*;

fn regression_inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fuzz-regressions");
    let mut inputs: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{target}-")))
        })
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    inputs.sort();
    // A test over no inputs would pass whatever the code does.
    assert!(
        !inputs.is_empty(),
        "no {target}-* inputs in {}",
        dir.display()
    );
    inputs
}

/// Runs `f` on every saved input of `target`, on a thread with a small stack like the fuzzer's.
fn returns_for_every_input(target: &str, f: fn(&[u8])) {
    for (path, bytes) in regression_inputs(target) {
        let result = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || f(&bytes))
            .unwrap()
            .join();
        assert!(result.is_ok(), "{} panicked", path.display());
    }
}

fn as_of() -> Date {
    jiff::civil::date(2026, 11, 15)
}

#[test]
fn fuzz_regressions_job_parse() {
    returns_for_every_input("job_parse", |bytes| {
        let _ = acronis_reports::job::parse(Path::new("job.yml"), bytes, as_of());
    });
}

fn inspect(format: Format, bytes: &[u8]) {
    let inspection = Inspection {
        format,
        check_skus: true,
        rule: Arc::new(BillingRule::default()),
    };
    let facts = inspection
        .inspect(bytes)
        .expect("reading memory cannot fail");
    assert!(facts.sku_check.rows_without_sku <= facts.sku_check.rows);
}

#[test]
fn fuzz_regressions_inspect_csv() {
    returns_for_every_input("inspect_csv", |bytes| inspect(Format::CsvV2, bytes));
}

#[test]
fn fuzz_regressions_inspect_json() {
    returns_for_every_input("inspect_json", |bytes| inspect(Format::JsonV2, bytes));
}
