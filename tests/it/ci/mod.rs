//! CI integrations end to end, against the sandbox on loopback:
//! - the binary in GitHub Actions mode (outputs, step summary, masks, annotations) and in GitLab
//!   mode (dotenv, JUnit);
//! - the `run:` steps of action.yml, executed by bash in a simulated runner: the binary already
//!   on PATH, a release asset from a local HTTPS server (verified, or refused when tampered), a
//!   build from source through a stub rustup; `args`, `install-only`, the one attested subject;
//! - release.yml's packing against what action.yml and `cargo binstall` download, the
//!   Dockerfile, and the one name of the repository;
//! - the README's auditor recipe, on an audit trail written by hand (`support::trail`);
//! - the `script:` lines of examples/gitlab-ci.yml, executed as written.

// The simulated runner and the GitLab example need bash: they run on Unix only.
#![cfg_attr(not(unix), allow(dead_code))]

mod action;
mod attest;
mod binary;
mod gitlab_example;
mod install;
mod release;
mod runner;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::release_server::ReleaseServer;
use crate::support::scripts::{
    hermetic, parse_dotenv, parse_github_output, path_without_acronis_reports, run_logged,
    stand_in_archive, substitute,
};
use crate::support::trail::write_trail;
use crate::support::{
    AS_OF, BIN, FAST_POLLING, REPO, Served, copy_tree, fail_tenant, read, sha256_hex, yaml,
};

const SECRET: &str = "caller-secret-value-4f1d";
const TOKEN: &str = "caller-token-value-9c2e";

// ---------------------------------------------------------------------------------------------
// A sandbox and a scratch folder.

struct World {
    served: Option<Served>,
    dir: tempfile::TempDir,
}

impl World {
    /// A sandbox whose reports are ready after 150 ms, failing every report of `failing`.
    fn new(failing: &[String]) -> Self {
        let mut scenario = crate::support::quick_scenario();
        for id in failing {
            fail_tenant(&mut scenario, id);
        }
        World {
            served: Some(Served::start(scenario)),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Only a scratch folder: for runs that start their own sandbox (`--sandbox`).
    fn scratch() -> Self {
        World {
            served: None,
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn sandbox(&self) -> &acronis_reports_sandbox::Sandbox {
        self.served.as_ref().expect("sandbox running").sandbox()
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Writes a job file for `tenants` (id, name) into the scratch folder.
    fn job(&self, name: &str, tenants: &[(String, String)]) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, job_text(tenants)).expect("write job");
        path
    }

    /// The sandbox's address and credentials, as the caller's environment would hold them.
    fn credentials(&self) -> Vec<(&'static str, String)> {
        self.served.as_ref().expect("sandbox running").credentials()
    }
}

fn job_text(tenants: &[(String, String)]) -> String {
    let mut text =
        format!("version: 1\ndefaults:\n  formats: [csv_v2_0]\n{FAST_POLLING}tenants:\n");
    for (id, name) in tenants {
        text.push_str(&format!("  - id: {id}\n    name: {name}\n"));
    }
    text
}

/// `count` tenants with made-up UUIDs, named `<prefix>NN`.
fn tenants(prefix: &str, count: usize) -> Vec<(String, String)> {
    (0..count)
        .map(|i| {
            let id = format!("00000000-0000-4000-8000-{:04}{:08}", prefix.len(), i + 1);
            (id, format!("{prefix}{:02}", i + 1))
        })
        .collect()
}

/// A minimal look at a JUnit report: (test cases, failures), checked against the totals the
/// root element declares.
fn junit_counts(xml: &str) -> (usize, usize) {
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(xml.trim_end().ends_with("</testsuites>"), "{xml}");
    let cases = xml.matches("<testcase ").count();
    let failures = xml.matches("<failure ").count();
    let root = &xml[xml.find("<testsuites ").expect("root")..];
    let root = &root[..root.find('>').expect("root tag ends")];
    assert!(root.contains(&format!(" tests=\"{cases}\"")), "{root}");
    assert!(
        root.contains(&format!(" failures=\"{failures}\"")),
        "{root}"
    );
    (cases, failures)
}

/// A relative path as the binary prints it on this system.
fn native(path: &str) -> String {
    path.replace('/', std::path::MAIN_SEPARATOR_STR)
}
