//! An audit trail as `run` writes one (the README's "The trail" section), written by hand, for
//! tests of what reads one: the README's auditor recipe, the monthly workflow's commit job.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::sha256_hex;

/// SHA256SUMS text for `files` (relative path → bytes), sorted by path, as sha256sum writes it.
pub fn sums_text(files: &BTreeMap<String, Vec<u8>>) -> String {
    files
        .iter()
        .map(|(path, bytes)| format!("{}  {path}\n", sha256_hex(bytes)))
        .collect()
}

/// An audit trail under `root`: `periods` (e.g. `2026-10`), each with
/// two report files, billing.csv, manifest.json, summary.md and a SHA256SUMS of them all; the
/// root's SHA256SUMS lists each period's SHA256SUMS and the root manifest.json and summary.md
/// (which name the last period).
pub fn write_trail(root: &Path, periods: &[&str]) {
    let mut root_files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for period in periods {
        let files: BTreeMap<String, Vec<u8>> = [
            (
                "acme/usage_summary.csv_v2_0.csv",
                "tenant.id,sku\nacme,SKU-1\n",
            ),
            (
                "globex/usage_summary.csv_v2_0.csv",
                "tenant.id,sku\nglobex,SKU-2\n",
            ),
            ("billing.csv", "tenant,sku,quantity\nacme,SKU-1,3\n"),
            ("manifest.json", "{\"period\": \"PERIOD\"}\n"),
            ("summary.md", "# PERIOD\n"),
        ]
        .into_iter()
        .map(|(p, t)| (p.to_owned(), t.replace("PERIOD", period).into_bytes()))
        .collect();
        for (path, bytes) in &files {
            let file = root.join(period).join(path);
            fs::create_dir_all(file.parent().unwrap()).unwrap();
            fs::write(file, bytes).unwrap();
        }
        let sums = sums_text(&files);
        fs::write(root.join(period).join("SHA256SUMS"), &sums).unwrap();
        root_files.insert(format!("{period}/SHA256SUMS"), sums.into_bytes());
    }
    let last = periods.last().expect("a period");
    for (name, text) in [
        ("manifest.json", format!("{{\"latest\": \"{last}\"}}\n")),
        ("summary.md", format!("# latest: {last}\n")),
    ] {
        fs::write(root.join(name), &text).unwrap();
        root_files.insert(name.to_owned(), text.into_bytes());
    }
    fs::write(root.join("SHA256SUMS"), sums_text(&root_files)).unwrap();
}
