//! The baseline: the vendor's example client (one report at a time, fixed 2-second polls, the
//! whole body in memory), in-process or as a child process of its own.

use super::*;

// ---------------------------------------------------------------------------------------------
// The baseline: the vendor's example approach, with reqwest directly

pub(super) struct Vendor {
    pub(super) http: reqwest::Client,
    pub(super) base: String,
    pub(super) token: String,
}

/// One baseline report: how long its download + write + hash took.
pub(super) struct VendorReport {
    pub(super) download: Duration,
}

impl Vendor {
    pub(super) async fn login(sandbox: &Sandbox) -> Vendor {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("http client");
        let base = format!("{}/api/2", sandbox.base_url());
        let answer: Value = http
            .post(format!("{base}/idp/token"))
            .basic_auth(sandbox.client_id(), Some(sandbox.client_secret()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("token")
            .json()
            .await
            .expect("token json");
        let token = answer["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned();
        Vendor { http, base, token }
    }

    pub(super) async fn create(&self, body: &Value) -> String {
        let answer: Value = self
            .http
            .post(format!("{}/reports", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("create")
            .json()
            .await
            .expect("create json");
        answer["id"].as_str().expect("report id").to_owned()
    }

    /// Sleep a fixed interval, list the stored files, until every format is saved.
    pub(super) async fn wait_saved(
        &self,
        id: &str,
        formats: usize,
        every: Duration,
    ) -> Vec<String> {
        loop {
            tokio::time::sleep(every).await;
            let answer: Value = self
                .http
                .get(format!("{}/reports/{id}/stored", self.base))
                .bearer_auth(&self.token)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .expect("stored list")
                .json()
                .await
                .expect("stored json");
            let saved: Vec<String> = answer["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|i| i["status"] == "saved")
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect();
            if saved.len() >= formats {
                return saved;
            }
        }
    }

    pub(super) fn download_url(&self, id: &str, stored: &str) -> String {
        format!("{}/reports/{id}/stored/{stored}", self.base)
    }

    /// `response.bytes()`, then write, then hash: the whole body in memory.
    pub(super) async fn download_whole(&self, id: &str, stored: &str, dest: &Path) -> Duration {
        let started = Instant::now();
        let body = self
            .http
            .get(self.download_url(id, stored))
            .bearer_auth(&self.token)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("download")
            .bytes()
            .await
            .expect("download body");
        std::fs::write(dest, &body).expect("write download");
        let _ = hex::encode(Sha256::digest(&body));
        started.elapsed()
    }

    /// One report start to end, as the vendor's example does it.
    pub(super) async fn one_report(
        &self,
        body: &Value,
        every: Duration,
        dir: &Path,
    ) -> VendorReport {
        let id = self.create(body).await;
        let stored = self.wait_saved(&id, 1, every).await;
        let mut download = Duration::ZERO;
        for (i, s) in stored.iter().enumerate() {
            download += self
                .download_whole(&id, s, &dir.join(format!("{id}.{i}")))
                .await;
        }
        VendorReport { download }
    }
}

/// The baseline's download in a process of its own, so that its peak RSS can be measured:
/// `__baseline-fetch REPORT_ID STORED_ID DEST`, with the URL and token in the environment.
pub(super) fn baseline_fetch_child(args: &[String]) {
    let [id, stored, dest] = args else {
        panic!("usage: {CHILD_MODE} REPORT_ID STORED_ID DEST");
    };
    let base = std::env::var("BENCH_CHILD_BASE").expect("BENCH_CHILD_BASE");
    let token = std::env::var("BENCH_CHILD_TOKEN").expect("BENCH_CHILD_TOKEN");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let t0 = Instant::now();
        let body = http
            .get(format!("{base}/reports/{id}/stored/{stored}"))
            .bearer_auth(&token)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("download")
            .bytes()
            .await
            .expect("body");
        let t1 = Instant::now();
        std::fs::write(dest, &body).expect("write");
        let t2 = Instant::now();
        let sha = hex::encode(Sha256::digest(&body));
        let t3 = Instant::now();
        println!(
            "{} {} {} {} {sha}",
            body.len(),
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            (t3 - t2).as_secs_f64()
        );
    });
}

// ---------------------------------------------------------------------------------------------
// The bench
