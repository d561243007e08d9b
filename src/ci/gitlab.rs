//! GitLab CI (and any CI that reads the same files): the outputs as a dotenv file for
//! `artifacts:reports:dotenv`, as a pure function to text. (Its JUnit report, for
//! `artifacts:reports:junit`, is [`crate::output::junit`].)

use std::fmt::Write as _;

use super::Outputs;

/// `reports-ok` → `ACRONIS_REPORTS_OK`.
pub(crate) fn dotenv_key(name: &str) -> String {
    format!("ACRONIS_{}", name.to_ascii_uppercase().replace('-', "_"))
}

/// GitLab's dotenv format has no quoting and no multi-line values.
pub(crate) fn dotenv_can_hold(value: &str) -> bool {
    !value.contains(['\n', '\r'])
}

/// `ACRONIS_OUTPUT_DIR=...` and so on, one line per output, in the order of [`Outputs::named`].
/// A value with a line break cannot be said in this format and is left out.
pub(crate) fn dotenv(outputs: &Outputs) -> String {
    let mut out = String::new();
    for (name, value) in outputs.named() {
        let value = value.to_string();
        if dotenv_can_hold(&value) {
            let _ = writeln!(out, "{}={value}", dotenv_key(name));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixtures::{failed_report, october, ok_report, run_of};
    use std::path::Path;

    #[test]
    fn dotenv_has_the_outputs_in_upper_snake_case() {
        let run = run_of(vec![
            ok_report("acme", october()),
            ok_report("globex", october()),
            failed_report("initech", october(), "boom"),
        ]);
        let outputs = Outputs::new(&run, Path::new("billing-reports"));
        let sep = std::path::MAIN_SEPARATOR;
        assert_eq!(
            dotenv(&outputs),
            format!(
                "ACRONIS_OUTPUT_DIR=billing-reports\n\
                 ACRONIS_MANIFEST=billing-reports{sep}manifest.json\n\
                 ACRONIS_CHECKSUMS=billing-reports{sep}SHA256SUMS\n\
                 ACRONIS_REPORTS_OK=2\n\
                 ACRONIS_REPORTS_FAILED=1\n\
                 ACRONIS_EXIT_CODE=1\n"
            )
        );
    }

    #[test]
    fn dotenv_leaves_out_what_it_cannot_hold() {
        let run = run_of(vec![ok_report("acme", october())]);
        let outputs = Outputs::new(&run, Path::new("a\nACRONIS_EXIT_CODE=7"));
        let text = dotenv(&outputs);
        assert!(!text.contains("ACRONIS_OUTPUT_DIR"), "{text}");
        assert!(!text.contains("=7"), "{text}");
        assert!(text.ends_with("ACRONIS_EXIT_CODE=0\n"), "{text}");
        assert_eq!(text.lines().count(), 3);
    }
}
