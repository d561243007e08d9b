//! What more than one area of the tests needs: a sandbox on loopback, a scratch folder, and the
//! binary with a hermetic environment; a stand-in release server; a hand-written audit trail.

pub mod release_server;
pub mod scripts;
pub mod trail;

use std::path::{Path, PathBuf};

use acronis_reports_sandbox::{Sandbox, Scenario, Stats, TenantBehaviour, TlsIdentity};
use assert_cmd::Command;
use sha2::{Digest, Sha256};

pub const ACME: &str = "ede9f834-70b3-476c-83d9-736f9f8c7dae";
pub const GLOBEX: &str = "0b5e2a3c-1f0e-4c52-9d53-2a1c7b0e9a11";
pub const INITECH: &str = "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f";
pub const AS_OF: &str = "2026-11-27";

/// The binary that `cargo test` built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_acronis-reports");
/// The repository's root: the files the tests read about the project are found from here.
pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// A sandbox on loopback on its own runtime, shut down when dropped.
pub struct Served {
    runtime: tokio::runtime::Runtime,
    sandbox: Option<Sandbox>,
}

impl Served {
    pub fn start(scenario: Scenario) -> Self {
        Self::on_port(scenario, 0)
    }

    /// A sandbox on `port`, which a previous instance may have only just released (so that two
    /// instances have the same base URL): binding is tried again for a moment.
    pub fn on_port(scenario: Scenario, port: u16) -> Self {
        let runtime = test_runtime();
        let mut attempts = 0;
        let sandbox = loop {
            match runtime.block_on(Sandbox::start(scenario.clone(), port)) {
                Ok(sandbox) => break sandbox,
                Err(e) if attempts < 40 && port != 0 => {
                    attempts += 1;
                    eprintln!("sandbox on port {port} not yet possible: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => panic!("sandbox starts: {e}"),
            }
        };
        Self {
            runtime,
            sandbox: Some(sandbox),
        }
    }

    /// A sandbox over TLS offering HTTP/2.
    pub fn tls(scenario: Scenario, identity: TlsIdentity) -> Self {
        let runtime = test_runtime();
        let sandbox = runtime
            .block_on(Sandbox::start_tls(scenario, 0, identity))
            .expect("TLS sandbox starts");
        Self {
            runtime,
            sandbox: Some(sandbox),
        }
    }

    pub fn sandbox(&self) -> &Sandbox {
        self.sandbox.as_ref().expect("sandbox running")
    }

    /// The sandbox's address and credentials, as the caller's environment (or CI variables)
    /// would hold them.
    pub fn credentials(&self) -> Vec<(&'static str, String)> {
        let sandbox = self.sandbox();
        vec![
            ("ACRONIS_BASE_URL", sandbox.base_url()),
            ("ACRONIS_CLIENT_ID", sandbox.client_id().to_owned()),
            ("ACRONIS_CLIENT_SECRET", sandbox.client_secret().to_owned()),
        ]
    }

    /// Shuts the sandbox down now; returns what it saw.
    pub fn stop(mut self) -> Stats {
        let sandbox = self.sandbox.take().expect("sandbox running");
        let stats = sandbox.stats();
        self.runtime.block_on(sandbox.shutdown());
        stats
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(sandbox) = self.sandbox.take() {
            self.runtime.block_on(sandbox.shutdown());
        }
    }
}

/// Makes every report of tenant `id` fail.
pub fn fail_tenant(scenario: &mut Scenario, id: &str) {
    scenario.tenants.insert(
        id.to_owned(),
        TenantBehaviour {
            fail: true,
            ..TenantBehaviour::default()
        },
    );
}

/// One test's world: a running sandbox (on its own runtime) and a temporary folder.
pub struct World {
    served: Served,
    pub dir: tempfile::TempDir,
}

impl World {
    pub fn new(scenario: Scenario) -> Self {
        Self {
            served: Served::start(scenario),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A sandbox over TLS offering HTTP/2, with a certificate from a fresh test CA; the CA's
    /// PEM is written to `ca.pem` in the scratch folder (see [`World::trust_ca`]).
    pub fn tls(scenario: Scenario) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
            .expect("test CA");
        let leaf_key = KeyPair::generate().expect("server key");
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .expect("server params")
            .signed_by(&leaf_key, &ca)
            .expect("server certificate");
        let identity = TlsIdentity {
            cert_chain: vec![leaf.der().clone()],
            key: rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        };
        let served = Served::tls(scenario, identity);
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("write CA");
        Self { served, dir }
    }

    /// Makes `cmd` trust the CA of a [`World::tls`] sandbox, as a user would with a private CA.
    pub fn trust_ca(&self, cmd: &mut Command) {
        cmd.env("SSL_CERT_FILE", self.path("ca.pem"));
    }

    /// A quick sandbox: reports are ready after 150 ms.
    pub fn quick() -> Self {
        Self::new(quick_scenario())
    }

    pub fn sandbox(&self) -> &Sandbox {
        self.served.sandbox()
    }

    pub fn stats(&self) -> Stats {
        self.sandbox().stats()
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn out(&self) -> PathBuf {
        self.path("out")
    }

    /// Writes a job file into the scratch folder and returns its path.
    pub fn job(&self, text: &str) -> PathBuf {
        let path = self.path("job.yml");
        std::fs::write(&path, text).expect("write job");
        path
    }

    /// The binary with a clean environment pointed at this world's sandbox.
    pub fn cmd(&self) -> Command {
        let mut cmd = bare_cmd();
        cmd.current_dir(self.dir.path())
            .envs(self.served.credentials());
        cmd
    }

    /// `run JOB --out OUT --as-of AS_OF` against the sandbox.
    pub fn run(&self, job: &Path) -> Command {
        let mut cmd = self.cmd();
        cmd.arg("run")
            .arg(job)
            .arg("--out")
            .arg(self.out())
            .args(["--as-of", AS_OF]);
        cmd
    }
}

pub fn test_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("test runtime")
}

/// Padding for a report large enough to be written around the page cache (16 MiB and more),
/// and not a multiple of any block size, so the file ends in a partial block.
pub const LARGE_REPORT_PAD: u64 = 20 * 1024 * 1024 + 12_345;

pub fn quick_scenario() -> Scenario {
    Scenario {
        generation_delay: std::time::Duration::from_millis(150),
        ..Scenario::default()
    }
}

/// The binary with nothing inherited that could change its behaviour.
pub fn bare_cmd() -> Command {
    let mut cmd = Command::cargo_bin("acronis-reports").expect("binary built");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .timeout(std::time::Duration::from_secs(120));
    cmd
}

/// Polling tuned for tests: fast first poll, short backoff, bounded.
pub const FAST_POLLING: &str =
    "polling:\n  initial_interval: 50ms\n  max_interval: 200ms\n  timeout: 20s\n";

/// A job for the given tenants (id, name) with the given extra top-level YAML.
pub fn job_text(tenants: &[(&str, &str)], extra: &str) -> String {
    let mut text = format!("version: 1\n{FAST_POLLING}{extra}tenants:\n");
    for (id, name) in tenants {
        text.push_str(&format!("  - id: {id}\n    name: {name}\n"));
    }
    text
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub fn sha256_file(path: &Path) -> String {
    sha256_hex(&std::fs::read(path).expect("read file"))
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A file of the repository (`path` from its root), parsed as YAML.
pub fn yaml(path: &str) -> serde_json::Value {
    let text = read(&Path::new(REPO).join(path));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

/// Copies a folder with everything in it, hidden files included.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

pub fn manifest(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("manifest.json")).expect("manifest.json"))
        .expect("valid JSON")
}

/// Every file under `dir` (relative paths, `/`-separated), sorted.
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let relative = path.strip_prefix(base).expect("inside base");
                out.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files);
    files.sort();
    files
}

/// Checks the trail the way an auditor does with `sha256sum -c`: the root `SHA256SUMS`, then
/// each period's `SHA256SUMS` it lists, in its folder. Every listed file exists with that hash.
/// Returns how many report files the periods list (those in a tenant folder; `billing.csv`,
/// `manifest.json` and `summary.md` beside them are checked but not counted).
pub fn check_sums(out: &Path) -> usize {
    let root = check_one(out);
    let periods: Vec<&String> = root
        .iter()
        .filter(|name| name.ends_with("/SHA256SUMS"))
        .collect();
    assert!(
        root.iter().any(|n| n == "manifest.json") && root.iter().any(|n| n == "summary.md"),
        "the root SHA256SUMS lists the root records: {root:?}"
    );
    let mut count = 0;
    for sums in periods {
        let folder = out.join(sums.trim_end_matches("/SHA256SUMS"));
        count += check_one(&folder)
            .iter()
            .filter(|n| n.contains('/'))
            .count();
    }
    count
}

/// Checks one folder's `SHA256SUMS`; returns the names it lists.
fn check_one(dir: &Path) -> Vec<String> {
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).expect("SHA256SUMS");
    let mut names = Vec::new();
    for line in sums.lines() {
        let (hash, name) = line
            .split_once("  ")
            .expect("two spaces between hash and name");
        assert_eq!(hash.len(), 64, "{line}");
        assert_eq!(sha256_file(&dir.join(name)), hash, "checksum of {name}");
        names.push(name.to_owned());
    }
    assert!(
        !names.is_empty(),
        "{} lists nothing",
        dir.join("SHA256SUMS").display()
    );
    names
}

/// The file lines of every period's `SHA256SUMS`, with paths from the output folder: what a
/// run's report and derived files are, whatever the time in the records beside them (the
/// `manifest.json` and `summary.md` lines are left out).
pub fn file_sums(out: &Path) -> String {
    let root = std::fs::read_to_string(out.join("SHA256SUMS")).expect("SHA256SUMS");
    let mut lines = Vec::new();
    for line in root.lines() {
        let Some(folder) = line
            .split_once("  ")
            .and_then(|(_, name)| name.strip_suffix("/SHA256SUMS"))
        else {
            continue;
        };
        let sums = std::fs::read_to_string(out.join(folder).join("SHA256SUMS"))
            .expect("a period's SHA256SUMS");
        for line in sums.lines() {
            let (hash, name) = line.split_once("  ").expect("a checksum line");
            if name != "manifest.json" && name != "summary.md" {
                lines.push(format!("{hash}  {folder}/{name}"));
            }
        }
    }
    lines.sort_by(|a, b| a[66..].cmp(&b[66..]));
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// A token from the sandbox's token endpoint, asked for by hand (a raw HTTP request), as a
/// caller who already holds one would pass it in `ACRONIS_TOKEN`.
pub fn fetch_token(world: &World) -> String {
    use base64::Engine as _;
    use std::io::{Read as _, Write as _};
    let sandbox = world.sandbox();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        sandbox.client_id(),
        sandbox.client_secret()
    ));
    let body = "grant_type=client_credentials";
    let mut stream = std::net::TcpStream::connect(sandbox.local_addr()).unwrap();
    write!(
        stream,
        "POST /api/2/idp/token HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {basic}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        sandbox.local_addr(),
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, json) = response.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{response}");
    let value: serde_json::Value = serde_json::from_str(json).expect("a JSON token answer");
    value["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("read")).expect("JSON")
}

pub fn stderr_of(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stderr).into_owned()
}

pub fn stdout_of(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stdout).into_owned()
}
