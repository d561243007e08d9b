//! `manifest.json`: the machine-readable record of a run (contract: `manifest_version` 1).

use std::io::{self, Write};

use crate::results::RunResult;

/// Pretty JSON (two-space indent) with a trailing newline. Key order is the field order of the
/// result types, which follows the contract.
#[cfg(test)]
pub(crate) fn render(result: &RunResult) -> String {
    // Every key is a struct field name and non-finite floats become `null`, so this cannot fail.
    let mut text = serde_json::to_string_pretty(result)
        .expect("a RunResult always serialises to JSON: its keys are all strings");
    text.push('\n');
    text
}

/// [`render`] straight to `out`: the manifest of a long run is megabytes that need not be held.
pub(crate) fn write(out: &mut dyn Write, result: &RunResult) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, result)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::BillingRule;
    use crate::results::fixtures::contract_run;

    /// The example of `manifest.json` in the contract (docs/spec outputs.md), verbatim.
    const CONTRACT_EXAMPLE: &str = r#"{
  "manifest_version": 1,
  "tool": {"name": "acronis-reports", "version": "0.1.0"},
  "started_at": "2026-11-01T06:00:00Z",
  "finished_at": "2026-11-01T06:04:10Z",
  "as_of": "2026-11-01",
  "job": {"path": "billing.yml", "sha256": "<hex>"},
  "base_url": "https://eu2-cloud.acronis.com",
  "reports": [
    {
      "tenant_id": "ede9f834-70b3-476c-83d9-736f9f8c7dae",
      "tenant_name": "acme",
      "period": {"start": "2026-10-01", "end": "2026-10-31"},
      "kind": "usage_summary",
      "level": "direct_partners",
      "report_id": "20dffb36-d77b-45c6-b2fa-39276e98d5fc",
      "status": "ok",
      "error": null,
      "files": [
        {
          "format": "csv_v2_0",
          "path": "2026-10/acme/usage_summary.csv_v2_0.csv",
          "stored_report_id": "479040dc-e18e-4136-98ce-635c3bc7dbae",
          "bytes": 4945,
          "sha256": "<hex>",
          "sku_check": {"status": "ok", "rows": 42, "rows_without_sku": 0}
        }
      ]
    }
  ]
}"#;

    /// Keys of the object members that start a line at exactly `indent` spaces, in text order.
    fn keys_at_indent(text: &str, indent: usize) -> Vec<String> {
        text.lines()
            .filter_map(|line| {
                let rest = line.strip_prefix(&" ".repeat(indent))?;
                let rest = rest.strip_prefix('"')?;
                Some(rest[..rest.find('"')?].to_owned())
            })
            .collect()
    }

    /// The contract fixes the order of its keys and allows more after them.
    fn assert_starts_with(ours: &[String], contract: &[String]) {
        assert!(
            ours.len() >= contract.len() && ours[..contract.len()] == *contract,
            "ours {ours:?} does not start with the contract's {contract:?}"
        );
    }

    #[test]
    fn key_order_follows_the_contract() {
        let text = render(&contract_run());
        // Top level at 2 spaces, a report's keys at 6, a file's keys at 10.
        for indent in [2, 6, 10] {
            let contract = keys_at_indent(CONTRACT_EXAMPLE, indent);
            assert!(!contract.is_empty());
            assert_starts_with(&keys_at_indent(&text, indent), &contract);
        }
        // The contract writes these small objects on one line; ours spreads them out.
        assert_eq!(
            keys_at_indent(&text, 4),
            [
                "name",
                "version",
                "path",
                "sha256",
                "scope",
                "measure",
                "delta_items"
            ]
        );
        assert_eq!(keys_at_indent(&text, 8), ["start", "end"]);
        assert_eq!(
            keys_at_indent(&text, 12),
            // The SKU check's, then the content check's (added after the contract).
            [
                "status",
                "rows",
                "rows_without_sku",
                "column",
                "status",
                "rows"
            ]
        );
    }

    #[test]
    fn values_match_the_contract_example() {
        let ours: serde_json::Value = serde_json::from_str(&render(&contract_run())).unwrap();
        let mut contract: serde_json::Value = serde_json::from_str(CONTRACT_EXAMPLE).unwrap();
        // Fields added after the contract example.
        contract["reports"][0]["dr_compute_points"] = serde_json::Value::Null;
        contract["reports"][0]["plan_index"] = 0.into();
        contract["reports"][0]["files"][0]["sku_check"]["column"] = "sku".into();
        contract["reports"][0]["files"][0]["content_check"] =
            serde_json::json!({"status": "skipped", "rows": 0});
        contract["billing_rule"] = serde_json::to_value(BillingRule::default()).unwrap();
        assert_eq!(ours, contract);
    }

    #[test]
    fn pretty_with_two_spaces_and_a_final_newline() {
        let text = render(&contract_run());
        assert!(text.starts_with("{\n  \"manifest_version\": 1,\n"));
        assert!(text.ends_with("}\n") && !text.ends_with("\n\n"));
    }
}
