//! `children_of` entries expanded against the sandbox's tenant tree: folders, pages, disabled
//! and trial tenants, include/exclude, and the record of what was in scope.

use acronis_reports_sandbox::{Scenario, TreeTenant};

use crate::support::*;

const PARTNER: &str = "10000000-0000-4000-8000-000000000000";

fn node(n: u32, name: &str, kind: &str, parent: &str) -> TreeTenant {
    TreeTenant {
        id: format!("10000000-0000-4000-8000-{n:012}"),
        name: name.to_owned(),
        kind: kind.to_owned(),
        parent_id: parent.to_owned(),
        enabled: true,
        pricing_mode: "production".to_owned(),
    }
}

/// partner → 7 customers (one disabled, one trial) + folder → 3 customers + sub-partner → 1.
fn tree() -> Vec<TreeTenant> {
    let folder = node(100, "Folder EU", "folder", PARTNER);
    let sub = node(200, "Sub Partner", "partner", PARTNER);
    let mut tenants = Vec::new();
    for i in 1..=7 {
        tenants.push(node(i, &format!("Customer {i:02}"), "customer", PARTNER));
    }
    tenants[5].enabled = false;
    tenants[6].pricing_mode = "trial".to_owned();
    for i in 1..=3 {
        tenants.push(node(
            100 + i,
            &format!("EU Customer {i}"),
            "customer",
            &folder.id,
        ));
    }
    tenants.push(node(201, "Sub Customer", "customer", &sub.id));
    tenants.push(folder);
    tenants.push(sub);
    tenants
}

fn world() -> World {
    World::new(Scenario {
        tenant_tree: tree(),
        children_page_size: 3,
        ..quick_scenario()
    })
}

fn discovery_job(entry: &str) -> String {
    format!("version: 1\n{FAST_POLLING}defaults:\n  formats: [csv_v2_0]\ntenants:\n{entry}")
}

#[test]
fn direct_children_over_several_pages_skip_disabled_and_trial() {
    let world = world();
    let job = world.job(&discovery_job(&format!("  - children_of: {PARTNER}\n")));
    world.run(&job).assert().success();
    let manifest = manifest(&world.out());
    let names: Vec<&str> = manifest["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tenant_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Customer 01",
            "Customer 02",
            "Customer 03",
            "Customer 04",
            "Customer 05"
        ]
    );
    let record = &manifest["discovery"][0];
    assert_eq!(record["children_of"], PARTNER);
    let reasons: Vec<String> = record["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["included"] == false)
        .map(|t| {
            format!(
                "{}: {}",
                t["name"].as_str().unwrap(),
                t["reason"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("Customer 06: disabled")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.starts_with("Customer 07: trial")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("Folder EU: kind folder")),
        "{reasons:?}"
    );
    assert_eq!(check_sums(&world.out()), 5);
}

#[test]
fn recursive_with_include_exclude_and_explicit_tenants() {
    let world = world();
    let entry = format!(
        "  - id: {ACME}\n    name: acme\n  - children_of: {PARTNER}\n    recursive: true\n    include: [\"*customer*\"]\n    exclude: [\"customer 0?\"]\n    include_trial: true\n"
    );
    let job = world.job(&discovery_job(&entry));
    world.run(&job).assert().success();
    let manifest = manifest(&world.out());
    let names: Vec<&str> = manifest["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tenant_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "acme",
            "EU Customer 1",
            "EU Customer 2",
            "EU Customer 3",
            "Sub Customer"
        ]
    );
}

#[test]
fn plan_shows_the_expanded_tenants_and_validate_needs_no_network() {
    let world = world();
    let job = world.job(&discovery_job(&format!(
        "  - children_of: {PARTNER}\n    kinds: [customer, folder]\n"
    )));
    let output = world
        .cmd()
        .args(["plan", "--json", "--as-of", AS_OF])
        .arg(&job)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let plan: serde_json::Value = serde_json::from_slice(&output).unwrap();
    let names: Vec<&str> = plan["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tenant_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Customer 01",
            "Customer 02",
            "Customer 03",
            "Customer 04",
            "Customer 05",
            "Folder EU"
        ]
    );
    assert_eq!(world.stats().create_requests, 0);

    let text = bare_cmd()
        .args(["validate", "--as-of", AS_OF])
        .arg(&job)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains(&format!("children of {PARTNER}")), "{text}");
}

#[test]
fn discovery_errors_stop_the_run_before_anything_is_created() {
    let world = world();
    let unknown = "20000000-0000-4000-8000-000000000000";
    let job = world.job(&discovery_job(&format!("  - children_of: {unknown}\n")));
    let assert = world.run(&job).assert().code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(
        stderr.contains(unknown) && stderr.contains("Tenant not found"),
        "{stderr}"
    );
    assert_eq!(world.stats().create_requests, 0);
}

#[test]
fn discovery_keys_on_an_id_entry_are_refused() {
    let world = world();
    let job = world.job(&discovery_job(&format!(
        "  - id: {ACME}\n    recursive: true\n"
    )));
    let assert = world.cmd().args(["validate"]).arg(&job).assert().code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(
        stderr.contains("job.yml:10:") && stderr.contains("only applies to `children_of`"),
        "{stderr}"
    );
}

/// Children named alike whose ids share their first 8 characters used to share a folder (one
/// report overwrote another, SHA256SUMS listed a path twice); a child id that is not a UUID
/// (here non-ASCII) used to panic the run.
#[test]
fn twins_get_distinct_folders_and_odd_ids_are_left_out() {
    let mut tenants: Vec<TreeTenant> = (1..=3)
        .map(|n| TreeTenant {
            id: format!("11111111-0000-4000-8000-{n:012}"),
            ..node(n, "Twin", "customer", PARTNER)
        })
        .collect();
    tenants.push(TreeTenant {
        id: "ééééé-not-a-uuid".to_owned(),
        ..node(9, "Twin", "customer", PARTNER)
    });
    let world = World::new(Scenario {
        tenant_tree: tenants,
        ..quick_scenario()
    });
    let job = world.job(&discovery_job(&format!("  - children_of: {PARTNER}\n")));
    let output = world.run(&job).output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let sums = file_sums(&world.out());
    let paths: Vec<&str> = sums
        .lines()
        .filter_map(|l| l.split_once("  ").map(|(_, p)| p))
        .filter(|p| p.contains("Twin"))
        .collect();
    let distinct: std::collections::HashSet<_> = paths.iter().collect();
    assert_eq!(paths.len(), 3, "{sums}");
    assert_eq!(distinct.len(), 3, "{sums}");
    check_sums(&world.out());
    let manifest = manifest(&world.out());
    let listed = manifest["discovery"][0]["tenants"].as_array().unwrap();
    let odd = listed
        .iter()
        .find(|t| t["id"] == "ééééé-not-a-uuid")
        .unwrap();
    assert_eq!(odd["included"], false);
    assert!(odd["reason"].as_str().unwrap().contains("UUID"), "{odd}");
}

/// A server that puts the client secret into a tenant's name (a careless echo, or a hostile
/// proxy) never gets it into a folder name or any record meant for git.
#[test]
fn a_secret_in_a_listed_tenant_name_is_never_written() {
    let mut scenario = quick_scenario();
    let secret = scenario.client_secret.clone();
    scenario.tenant_tree = vec![node(1, &format!("{secret} GmbH"), "customer", PARTNER)];
    let world = World::new(scenario);
    let job = world.job(&discovery_job(&format!("  - children_of: {PARTNER}\n")));
    world.run(&job).assert().success();
    let out = world.out();
    let files = crate::support::tree(&out);
    assert!(files.len() > 4, "{files:?}");
    for file in &files {
        assert!(!file.contains(&secret), "a path holds the secret: {file}");
        let bytes = std::fs::read(out.join(file)).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        // The report file is the server's own bytes; every record we write is scrubbed.
        if !file.contains("usage_") {
            assert!(!text.contains(&secret), "{file} holds the secret");
        }
    }
    assert_eq!(
        manifest(&out)["reports"][0]["tenant_name"],
        "[redacted] GmbH"
    );
}
