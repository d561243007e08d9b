//! The committed JSON Schema (`schema/job.schema.json`, used by editors through the
//! `# yaml-language-server: $schema=URL` line of our examples, at this release's tag) must match
//! the code.

use std::path::Path;

#[test]
fn committed_schema_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/job.schema.json");
    let expected =
        serde_json::to_string_pretty(&acronis_reports::job::json_schema()).unwrap() + "\n";
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != expected {
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &expected).unwrap();
        } else {
            panic!(
                "schema/job.schema.json is stale; regenerate it with `UPDATE_SCHEMA=1 cargo test --test it schema::` and commit it"
            );
        }
    }
}

#[test]
fn every_schema_property_has_a_description() {
    let schema = acronis_reports::job::json_schema();
    let value = serde_json::to_value(&schema).unwrap();
    let mut missing = Vec::new();
    let mut seen = 0;
    walk(&value, "", &mut missing, &mut seen);
    assert!(
        missing.is_empty(),
        "properties without a description: {missing:?}"
    );
    // The job file has dozens of keys: a walk that found few did not look.
    assert!(seen >= 30, "only {seen} properties walked");
}

fn walk(value: &serde_json::Value, at: &str, missing: &mut Vec<String>, seen: &mut usize) {
    if let Some(properties) = value.get("properties").and_then(|p| p.as_object()) {
        for (name, property) in properties {
            *seen += 1;
            let here = format!("{at}/{name}");
            let described = property.get("description").is_some()
                || property
                    .get("$ref")
                    .is_some_and(|_| property.get("description").is_some());
            if !described {
                missing.push(here.clone());
            }
            walk(property, &here, missing, seen);
        }
    }
    if let Some(defs) = value.get("$defs").and_then(|d| d.as_object()) {
        for (name, def) in defs {
            walk(def, &format!("#/$defs/{name}"), missing, seen);
        }
    }
}

#[test]
fn examples_point_editors_at_the_schema() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut jobs = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let is_job = path.extension().is_some_and(|e| e == "yml")
            && !path.to_string_lossy().contains("gitlab")
            && !path.to_string_lossy().contains("github");
        if is_job {
            jobs += 1;
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                text.starts_with(&acronis_reports::job::modeline()),
                "{} must start with the schema line",
                path.display()
            );
        }
    }
    assert!(
        jobs >= 1,
        "no example job file found (examples/monthly.yml at least)"
    );
}
