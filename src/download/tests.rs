use super::*;

fn gunzip_all(chunks: &[&[u8]]) -> std::io::Result<Vec<u8>> {
    let mut gunzip = Gunzip::default();
    let mut out = Vec::new();
    for chunk in chunks {
        gunzip.feed(bytes::Bytes::copy_from_slice(chunk));
        while let Some(piece) = gunzip.next_piece()? {
            assert!(!piece.is_empty());
            out.extend_from_slice(&piece);
        }
    }
    if let Some(rest) = gunzip.finish()? {
        out.extend_from_slice(&rest);
    }
    Ok(out)
}

/// A small chunk of a dense gzip stream comes out in pieces, never all at once: 64 KiB of
/// compressed zeros are 64 MiB decoded, which the download's size checks must see piece by
/// piece rather than after the whole chunk sits in memory.
#[test]
fn a_dense_gzip_chunk_is_decoded_a_piece_at_a_time() {
    let decoded_size = 64 * 1024 * 1024;
    let compressed = gzip(&vec![0u8; decoded_size]);
    assert!(compressed.len() < 128 * 1024, "{}", compressed.len());
    let mut gunzip = Gunzip::default();
    gunzip.feed(bytes::Bytes::from(compressed));
    let (total, peak) = crate::heap::peak_of(|| {
        let mut total = 0;
        let mut largest = 0;
        while let Some(piece) = gunzip.next_piece().unwrap() {
            largest = largest.max(piece.len());
            total += piece.len();
        }
        total += gunzip.finish().unwrap().map_or(0, |rest| rest.len());
        assert!(
            largest <= Gunzip::PIECE + 64 * 1024,
            "a piece of {largest} bytes"
        );
        total
    });
    assert_eq!(total, decoded_size);
    assert!(peak < 4 * 1024 * 1024, "held {peak} bytes at once");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn a_gzip_body_is_decoded_however_it_is_cut() {
    let report: Vec<u8> = (0..200_000)
        .flat_map(|i: u32| format!("tenant-{},{}\n", i % 97, i).into_bytes())
        .collect();
    let mut compressed = gzip(&report[..report.len() / 2]);
    // Two gzip members, as a concatenated `.gz` file has.
    compressed.extend(gzip(&report[report.len() / 2..]));
    for cut in [1, 2, 3, 1000, 70_000, compressed.len()] {
        let chunks: Vec<&[u8]> = compressed.chunks(cut).collect();
        assert!(gunzip_all(&chunks).unwrap() == report, "cut {cut}");
    }
}

#[test]
fn a_plain_body_passes_untouched_and_a_cut_gzip_body_is_an_error() {
    for body in [&b""[..], b"x", b"\x1f", b"\x1fX", b"tenant.id,name\n1,a\n"] {
        assert_eq!(gunzip_all(&[body]).unwrap(), body);
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(gunzip_all(&bytes).unwrap(), body);
    }
    let compressed = gzip(b"tenant.id,name\n1,a\n");
    assert!(gunzip_all(&[&compressed[..compressed.len() - 4]]).is_err());
}

/// Serves `app` on loopback: its base URL, and the server's task.
async fn serve(app: axum::Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (base, server)
}

/// Serves `app` on loopback: a client of it (with a token), and the server's task.
async fn serve_downloads(app: axum::Router) -> (Client, tokio::task::JoinHandle<()>) {
    let (base, server) = serve(app).await;
    let client = Client::new(
        crate::api::api_base(&base).unwrap(),
        crate::api::Credentials::Token(crate::secret::Secret::new("token")),
        crate::api::ClientOptions::default(),
    )
    .unwrap();
    (client, server)
}

/// A server on loopback that serves one stored file, gzip-encoded on the wire, and the
/// compressed length it would announce.
async fn serve_gzip_encoded(report: Vec<u8>) -> (String, u64, tokio::task::JoinHandle<()>) {
    let compressed = bytes::Bytes::from(gzip(&report));
    let announced = compressed.len() as u64;
    let app = axum::Router::new().route(
        "/api/2/reports/{id}/stored/{stored}",
        axum::routing::get(move || {
            let body = compressed.clone();
            async move {
                (
                    [
                        (axum::http::header::CONTENT_TYPE, "text/csv"),
                        (axum::http::header::CONTENT_ENCODING, "gzip"),
                    ],
                    body,
                )
            }
        }),
    );
    let (base, server) = serve(app).await;
    (base, announced, server)
}

#[tokio::test]
async fn a_report_compressed_far_better_than_4_to_1_is_not_cut_off() {
    // 24 MiB of CSV rows that compress about as well as real ones do (tens to one).
    let mut report = Vec::new();
    let mut i = 0u64;
    while report.len() < 24 * 1024 * 1024 {
        report.extend_from_slice(
                format!(
                    "ede9f834-70b3-476c-83d9-736f9f8c7dae,customer,backup,standard,pw_base_storage,{},{},{}\n",
                    i * 7919 % 100_003,
                    i,
                    i % 13
                )
                .as_bytes(),
            );
        i += 1;
    }
    let (base, announced, server) = serve_gzip_encoded(report.clone()).await;
    // Well past the old bound of 4 × the announced size + 16 MiB.
    assert!(report.len() as u64 > 4 * announced + OVERSIZE_SLACK);
    let client = Client::new(
        crate::api::api_base(&base).unwrap(),
        crate::api::Credentials::Token(crate::secret::Secret::new("token")),
        crate::api::ClientOptions::default(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("usage_summary.csv");
    let inspection = Inspection {
        format: crate::report::Format::Csv,
        check_skus: false,
        rule: Default::default(),
    };
    let done = fetch_to_file(
        &client,
        "r",
        "s",
        Some(announced),
        &dest,
        inspection,
        Policy {
            attempts: 1,
            ..Policy::default()
        },
    )
    .await
    .expect("a well-compressed report downloads whole");
    assert_eq!(done.bytes, report.len() as u64);
    assert!(std::fs::read(&dest).unwrap() == report);
    server.abort();
}

/// A loopback server answering every download with `body` and `content_type` (no
/// encoding), counting the requests.
async fn serve_plain(
    body: Vec<u8>,
    content_type: &'static str,
) -> (
    Client,
    std::sync::Arc<std::sync::atomic::AtomicU32>,
    tokio::task::JoinHandle<()>,
) {
    use std::sync::atomic::{AtomicU32, Ordering};
    let hits = std::sync::Arc::new(AtomicU32::new(0));
    let counted = hits.clone();
    let body = bytes::Bytes::from(body);
    let app = axum::Router::new().route(
        "/api/2/reports/{id}/stored/{stored}",
        axum::routing::get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            let body = body.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, content_type)], body) }
        }),
    );
    let (client, server) = serve_downloads(app).await;
    (client, hits, server)
}

fn csv_inspection() -> Inspection {
    Inspection {
        format: crate::report::Format::Csv,
        check_skus: false,
        rule: Default::default(),
    }
}

/// A body cut at a row's end with a Content-Length that matches the cut looked complete:
/// it is fetched again, then fails naming both lengths; `warn` keeps it, `off` says nothing.
#[tokio::test]
async fn a_body_shorter_than_the_announced_size_is_refused() {
    let full = b"tenant,usage\na,1\nb,2\nc,3\n".to_vec();
    let short = full[..full.len() - 4].to_vec();
    let (client, hits, server) = serve_plain(short.clone(), "text/csv").await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("r.csv");
    let announced = Some(full.len() as u64);
    let fetch = |size| {
        fetch_to_file(
            &client,
            "r",
            "s",
            announced,
            &dest,
            csv_inspection(),
            Policy {
                attempts: 2,
                size,
                ..Policy::default()
            },
        )
    };
    let error = fetch(SizePolicy::Required).await.unwrap_err();
    assert!(
        matches!(error, DownloadError::SizeMismatch { announced: a, transferred: t, .. }
                if a == full.len() as u64 && t == short.len() as u64),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&full.len().to_string()) && message.contains(&short.len().to_string()),
        "{message}"
    );
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "fetched again"
    );
    assert!(!dest.exists(), "a short file never takes the final name");
    for size in [SizePolicy::Warn, SizePolicy::Off] {
        let done = fetch(size).await.unwrap();
        assert_eq!(done.bytes, short.len() as u64);
    }
    server.abort();
}

/// A loopback server streaming `chunk` every `every`, `count` times, with no size anywhere.
async fn serve_stream(
    chunk: Vec<u8>,
    every: Duration,
    count: usize,
    gzip_encoded: bool,
) -> (Client, tokio::task::JoinHandle<()>) {
    let chunk = bytes::Bytes::from(chunk);
    let app = axum::Router::new().route(
        "/api/2/reports/{id}/stored/{stored}",
        axum::routing::get(move || {
            let chunk = chunk.clone();
            async move {
                let body = futures_util::stream::unfold(0usize, move |n| {
                    let chunk = chunk.clone();
                    async move {
                        if n >= count {
                            return None;
                        }
                        if !every.is_zero() {
                            tokio::time::sleep(every).await;
                        }
                        Some((Ok::<_, std::io::Error>(chunk), n + 1))
                    }
                });
                let encoding = if gzip_encoded { "gzip" } else { "identity" };
                (
                    [
                        (axum::http::header::CONTENT_TYPE, "text/csv"),
                        (axum::http::header::CONTENT_ENCODING, encoding),
                    ],
                    axum::body::Body::from_stream(body),
                )
            }
        }),
    );
    let (client, server) = serve_downloads(app).await;
    (client, server)
}

/// Without a `size`, an endless body or a gzip bomb grew without bound: the absolute cap
/// applies always.
#[tokio::test]
async fn endless_bodies_and_gzip_bombs_stop_at_the_file_size_cap() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("r.csv");
    let policy = Policy {
        max_file_size: 4 << 20,
        ..Policy::default()
    };
    let (client, server) =
        serve_stream(vec![b'x'; 64 * 1024], Duration::ZERO, usize::MAX, false).await;
    let error = fetch_to_file(
        &client,
        "r",
        "s",
        None,
        &dest,
        csv_inspection(),
        Policy {
            attempts: 3,
            ..policy
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, DownloadError::TooLarge { limit } if limit == 4 << 20),
        "{error}"
    );
    assert!(
        error.to_string().contains("limits.max_file_size"),
        "{error}"
    );
    server.abort();
    // 64 MiB of zeros in about 64 KiB of gzip, on the wire as Content-Encoding.
    let bomb = gzip(&vec![0u8; 64 << 20]);
    let (client, server) = serve_stream(bomb, Duration::ZERO, 1, true).await;
    let error = fetch_to_file(
        &client,
        "r",
        "s",
        None,
        &dest,
        csv_inspection(),
        Policy {
            attempts: 3,
            ..policy
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(error, DownloadError::TooLarge { .. }), "{error}");
    assert!(!dest.exists());
    server.abort();
}

/// A body trickling a byte at a time ran until killed: every download has a deadline and a
/// minimum rate.
#[tokio::test]
async fn a_trickling_body_meets_the_deadline_and_the_minimum_rate() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("r.csv");
    let (client, server) =
        serve_stream(b"x".to_vec(), Duration::from_millis(50), usize::MAX, false).await;
    let started = std::time::Instant::now();
    let policy = Policy {
        deadline: Duration::from_millis(800),
        ..Policy::default()
    };
    let error = fetch_to_file(
        &client,
        "r",
        "s",
        None,
        &dest,
        csv_inspection(),
        Policy {
            attempts: 3,
            ..policy
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(error, DownloadError::Deadline { .. }), "{error}");
    assert!(
        error.to_string().contains("limits.download_timeout"),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "not retried");
    let policy = Policy {
        rate_grace: Duration::from_millis(300),
        min_rate: 1000,
        ..Policy::default()
    };
    let error = fetch_to_file(
        &client,
        "r",
        "s",
        None,
        &dest,
        csv_inspection(),
        Policy {
            attempts: 3,
            ..policy
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(error, DownloadError::TooSlow { .. }), "{error}");
    server.abort();
}

/// A captive portal's page answering 200 was saved as the report.
#[tokio::test]
async fn an_html_page_is_not_saved_as_a_csv_or_json_file() {
    let page = b"<!DOCTYPE html><html><head><title>Sign in to Wi-Fi</title></head></html>".to_vec();
    let (client, hits, server) = serve_plain(page, "text/html; charset=utf-8").await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("r.csv");
    let error = fetch_to_file(
        &client,
        "r",
        "s",
        None,
        &dest,
        csv_inspection(),
        Policy {
            attempts: 3,
            ..Policy::default()
        },
    )
    .await
    .unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, DownloadError::WrongContentType { .. }),
        "{message}"
    );
    assert!(
        message.contains("text/html") && message.contains("<!DOCTYPE html><html>"),
        "{message}"
    );
    assert!(!dest.exists());
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "not retried"
    );
    let html = Inspection {
        format: crate::report::Format::Html,
        ..csv_inspection()
    };
    fetch_to_file(
        &client,
        "r",
        "s",
        None,
        &dest,
        html,
        Policy {
            attempts: 1,
            ..Policy::default()
        },
    )
    .await
    .expect("an html report may be html");
    server.abort();
}

/// A credential an HTML page echoes across the quote's cut is scrubbed before the cut, so
/// not even its start is quoted.
#[tokio::test]
async fn a_credential_across_the_quotes_cut_is_scrubbed_whole() {
    let page = format!("<html>{}SECRETTOKEN123 echoed</html>", "x".repeat(68));
    let (plain, _, server) = serve_plain(page.into_bytes(), "text/html").await;
    let client = Client::new(
        plain.base_url().clone(),
        crate::api::Credentials::Token(crate::secret::Secret::new("SECRETTOKEN123")),
        crate::api::ClientOptions::default(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let error = fetch_to_file(
        &client,
        "r",
        "s",
        None,
        &dir.path().join("r.csv"),
        csv_inspection(),
        Policy::default(),
    )
    .await
    .unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, DownloadError::WrongContentType { .. }),
        "{message}"
    );
    assert!(!message.contains("SECRET"), "{message}");
    server.abort();
}

/// A gzip transfer cut short fails its trailer check: like any cut, it is fetched again.
#[tokio::test]
async fn a_cut_gzip_transfer_is_fetched_again() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let whole = gzip(&b"tenant.id,usage\n".repeat(10_000));
    let cut = bytes::Bytes::from(whole[..whole.len() / 2].to_vec());
    let hits = std::sync::Arc::new(AtomicU32::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().route(
        "/api/2/reports/{id}/stored/{stored}",
        axum::routing::get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            let body = cut.clone();
            async move {
                (
                    [
                        (axum::http::header::CONTENT_TYPE, "text/csv"),
                        (axum::http::header::CONTENT_ENCODING, "gzip"),
                    ],
                    body,
                )
            }
        }),
    );
    let (client, server) = serve_downloads(app).await;
    let dir = tempfile::tempdir().unwrap();
    let error = fetch_to_file(
        &client,
        "r",
        "s",
        None,
        &dir.path().join("r.csv"),
        csv_inspection(),
        Policy::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, DownloadError::Gzip { .. }), "{error}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        3,
        "fetched again, then given up"
    );
    server.abort();
}

/// A server that thinks before it streams is not "too slow": the minimum rate counts from
/// the body's first byte.
#[tokio::test]
async fn the_minimum_rate_counts_from_the_first_byte() {
    let (client, server) =
        serve_stream(vec![b'x'; 4096], Duration::from_millis(1500), 1, false).await;
    let dir = tempfile::tempdir().unwrap();
    let done = fetch_to_file(
        &client,
        "r",
        "s",
        None,
        &dir.path().join("r.csv"),
        csv_inspection(),
        Policy {
            rate_grace: Duration::from_secs(1),
            min_rate: 1024,
            ..Policy::default()
        },
    )
    .await
    .expect("a late but fast body arrives");
    assert_eq!(done.bytes, 4096);
    server.abort();
}

/// A JSON document that does not parse is fetched again before its report fails.
#[tokio::test]
async fn a_json_file_that_does_not_read_is_fetched_again() {
    let (client, hits, server) =
        serve_plain(b"{\"items\": [{\"id\": ".to_vec(), "application/json").await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("r.json");
    let inspection = Inspection {
        format: crate::report::Format::JsonV2,
        ..csv_inspection()
    };
    let done = fetch_to_file(
        &client,
        "r",
        "s",
        None,
        &dest,
        inspection,
        Policy {
            attempts: 3,
            ..Policy::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(done.inspected.content_check.status, CheckStatus::Failed);
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 3);
    server.abort();
}

/// The announced size may be the length as transferred (gzip) or, for a server that sends
/// the file unencoded, the decoded length: both are accepted.
#[tokio::test]
async fn the_announced_size_matches_as_transferred_or_decoded() {
    let report = b"tenant,usage\na,1\n".repeat(500);
    let (base, announced, server) = serve_gzip_encoded(report.clone()).await;
    let client = Client::new(
        crate::api::api_base(&base).unwrap(),
        crate::api::Credentials::Token(crate::secret::Secret::new("token")),
        crate::api::ClientOptions::default(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("r.csv");
    let done = fetch_to_file(
        &client,
        "r",
        "s",
        Some(announced),
        &dest,
        csv_inspection(),
        Policy {
            attempts: 1,
            ..Policy::default()
        },
    )
    .await
    .expect("a gzip transfer as long as announced");
    assert_eq!(done.bytes, report.len() as u64);
    server.abort();
    let (client, _, server) = serve_plain(report.clone(), "text/csv").await;
    fetch_to_file(
        &client,
        "r",
        "s",
        Some(report.len() as u64),
        &dest,
        csv_inspection(),
        Policy {
            attempts: 1,
            ..Policy::default()
        },
    )
    .await
    .expect("an unencoded file as long as announced");
    server.abort();
}

#[test]
fn the_oversize_limit_never_cuts_a_well_compressed_report() {
    // 50× is already a very good ratio for CSV; the limit leaves room up to deflate's 1032×.
    for announced in [1, 1_000, 10_000_000, 1 << 30] {
        assert!(oversize_limit(announced) >= announced * 1032);
    }
    assert_eq!(oversize_limit(u64::MAX), u64::MAX);
}

/// A smaller file's thread starts with its first batch, not with the download: hundreds of
/// small downloads waiting on the network held as many blocking threads (BENCHMARKS.md, the
/// scale case, ninth session). It still writes, hashes and checks everything, an empty file
/// too.
#[tokio::test]
async fn a_small_download_takes_a_thread_only_once_it_has_bytes() {
    let dir = tempfile::tempdir().unwrap();
    for body in [&b""[..], b"a,b\n1,2\n"] {
        let path = dir.path().join("small.csv");
        let file = std::fs::File::create(&path).unwrap();
        let mut workers = Workers::start(file, None, csv_inspection(), false);
        assert!(
            workers.threads.is_empty(),
            "no thread before the first batch"
        );
        if !body.is_empty() {
            assert!(
                workers
                    .hand_over(vec![bytes::Bytes::copy_from_slice(body)], true)
                    .await
            );
            assert_eq!(workers.threads.len(), 1);
        }
        let work = workers.finish().await.unwrap();
        assert_eq!(work.written, Some(body.len() as u64));
        assert_eq!(work.hashed.unwrap().0, body.len() as u64);
        assert_eq!(std::fs::read(&path).unwrap(), body);
    }
    // A large file's threads start with it: it holds them until it ends in any case.
    let file = std::fs::File::create(dir.path().join("large.csv")).unwrap();
    let workers = Workers::start(file, None, csv_inspection(), true);
    assert_eq!(workers.threads.len(), 2);
    workers.finish().await.unwrap();
}

/// A `csv_v2_0` file of `rows` rows of distinct tenants, each with a SKU except the last.
fn vendor_csv(rows: usize) -> Vec<u8> {
    let mut text = String::from(
        "tenant.id,tenant.kind,name,usage.absolute.production,usage.absolute.total,usage.absolute.trial,usage.delta.production,usage.delta.total,usage.delta.trial,usage.effective.production,usage.effective.total,usage.effective.trial,sku\n",
    );
    for i in 0..rows {
        let sku = if i + 1 == rows { "" } else { "SP4APDENS" };
        text.push_str(&format!(
            "00000000-0000-4000-8000-{i:012},customer,pw_padding,{i},{i},0,1,1,0,{i},{i},0,{sku}\n"
        ));
    }
    text.into_bytes()
}

fn csv_v2_inspection() -> Inspection {
    Inspection {
        format: crate::report::Format::CsvV2,
        check_skus: true,
        rule: Default::default(),
    }
}

/// A large file's check that falls behind the transfer (its queue full) reads the rest from
/// the file once the writer has written it, and finds what reading every byte from memory
/// finds: every row, and the last row's missing SKU, which only the part read from the file
/// holds.
#[tokio::test]
async fn a_large_files_check_that_falls_behind_reads_the_rest_from_the_file() {
    let body = vendor_csv(200_000);
    assert!(body.len() > 6 * BATCH_BYTES, "{} bytes", body.len());
    let expected = csv_v2_inspection().inspect(body.as_slice()).unwrap();
    assert_eq!(expected.content_check.rows, 200_000);
    assert_eq!(expected.sku_check.rows_without_sku, 1);
    for fed_batches in [0, 2] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("large.csv");
        let file = std::fs::File::create(&path).unwrap();
        let read_back = std::fs::File::open(&path).unwrap();
        let work = through_a_check_behind(&body, fed_batches, file, read_back)
            .await
            .unwrap();
        assert_eq!(work.written, Some(body.len() as u64));
        assert_eq!(work.hashed.unwrap().0, body.len() as u64);
        assert_eq!(
            work.inspected.as_ref(),
            Some(&expected),
            "fed {fed_batches} batches"
        );
        assert!(std::fs::read(&path).unwrap() == body);
    }
}

/// A download that ends early (an error, a retry) stops a check reading the file behind the
/// writer, rather than let it read a file nobody keeps.
#[tokio::test]
async fn a_check_behind_the_writer_stops_when_the_download_is_abandoned() {
    let body = vendor_csv(20_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.csv");
    let file = std::fs::File::create(&path).unwrap();
    let read_back = std::fs::File::open(&path).unwrap();
    let mut workers = Workers::start(file, Some(read_back), csv_v2_inspection(), true);
    workers.stop_feeding_check();
    let half = body.len() / 2;
    assert!(
        workers
            .hand_over(vec![bytes::Bytes::copy_from_slice(&body[..half])], false)
            .await
    );
    let threads = std::mem::take(&mut workers.threads);
    drop(workers);
    let mut ended = Vec::new();
    for thread in threads {
        let work = tokio::time::timeout(Duration::from_secs(20), thread).await;
        ended.push(work.expect("a thread still runs after the download ended"));
    }
    let check = ended.pop().unwrap();
    assert!(
        check
            .as_ref()
            .is_err_and(|e| e.to_string().contains("abandoned")),
        "{check:?}"
    );
}

/// Feeds `body` to a large file's workers in batches (cut in odd places), the check's queue
/// taking `fed_batches` of them before the transfer stops feeding it; what they found.
async fn through_a_check_behind(
    body: &[u8],
    fed_batches: usize,
    file: std::fs::File,
    read_back: std::fs::File,
) -> std::io::Result<Work> {
    let mut workers = Workers::start(file, Some(read_back), csv_v2_inspection(), true);
    // Writing, hashing and the check, each on a thread of its own.
    assert_eq!(workers.threads.len(), 3);
    let mut batches = body.chunks(BATCH_BYTES);
    for batch in batches.by_ref().take(fed_batches) {
        if !workers
            .hand_over(vec![bytes::Bytes::copy_from_slice(batch)], false)
            .await
        {
            break;
        }
    }
    workers.stop_feeding_check();
    for batch in batches {
        let (first, second) = batch.split_at(batch.len() / 7);
        let pieces = vec![
            bytes::Bytes::copy_from_slice(first),
            bytes::Bytes::copy_from_slice(second),
        ];
        if !workers.hand_over(pieces, false).await {
            break;
        }
    }
    tokio::time::timeout(Duration::from_secs(30), workers.finish())
        .await
        .expect("the workers end")
}

/// Attack: files whose size is an exact multiple of the direct block (1 MiB) or of the
/// alignment (4 096), an empty one, one byte, and ends mid-row, with the check reading the
/// file from its first byte or after a batch: the check finds what a read from memory finds.
#[tokio::test]
async fn a_check_behind_finds_the_same_at_every_file_size() {
    let all = vendor_csv(40_000);
    let mib = 1 << 20;
    assert!(all.len() > 3 * mib, "{}", all.len());
    for len in [
        0,
        1,
        4096,
        3 * 4096,
        mib,
        mib + 4096,
        2 * mib,
        2 * mib + 1,
        3 * mib - 1,
        3 * mib,
    ] {
        let body = &all[..len];
        let expected = csv_v2_inspection().inspect(body).unwrap();
        for fed_batches in [0, 1] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("large.csv");
            let file = std::fs::File::create(&path).unwrap();
            let read_back = std::fs::File::open(&path).unwrap();
            let work = through_a_check_behind(body, fed_batches, file, read_back)
                .await
                .unwrap();
            assert_eq!(work.written, Some(len as u64), "{len}");
            assert_eq!(work.hashed.unwrap().0, len as u64, "{len}");
            assert_eq!(
                work.inspected.as_ref(),
                Some(&expected),
                "{len} bytes, fed {fed_batches}"
            );
            assert!(std::fs::read(&path).unwrap() == body, "{len}");
        }
    }
}

/// Attack: the writer fails (here: a handle it cannot write through, as a disk error would)
/// while the check reads the file behind it. The download fails, and no thread is left
/// waiting for bytes that never come.
#[tokio::test]
async fn a_writer_that_fails_leaves_no_check_waiting() {
    let body = vendor_csv(40_000);
    assert!(body.len() > 3 << 20);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.csv");
    std::fs::write(&path, b"").unwrap();
    for fed_batches in [0, 2] {
        // Opened for reading only: every write is refused.
        let file = std::fs::File::open(&path).unwrap();
        let read_back = std::fs::File::open(&path).unwrap();
        let mut workers = Workers::start(file, Some(read_back), csv_v2_inspection(), true);
        let mut batches = body.chunks(BATCH_BYTES);
        for batch in batches.by_ref().take(fed_batches) {
            workers
                .hand_over(vec![bytes::Bytes::copy_from_slice(batch)], false)
                .await;
        }
        workers.stop_feeding_check();
        for batch in batches {
            if !workers
                .hand_over(vec![bytes::Bytes::copy_from_slice(batch)], false)
                .await
            {
                break;
            }
        }
        // As `finish` does, but waiting for every thread, the check's too; the workers do not
        // abandon the check here: the writer's failure alone must end it.
        workers.inboxes.clear();
        workers.progress = None;
        let threads = std::mem::take(&mut workers.threads);
        let mut results = Vec::new();
        for thread in threads {
            let work = tokio::time::timeout(Duration::from_secs(20), thread).await;
            results.push(work.expect("a thread still waits after the writer failed"));
        }
        assert!(results[0].is_err(), "the writer's error");
        assert!(
            results[2].is_err(),
            "the check cannot say ok: {:?}",
            results[2]
        );
    }
}

/// A loopback server sending `body` with a Content-Length of its whole length, cutting the
/// connection after `cut` bytes when given; counting the requests.
async fn serve_large(
    body: Vec<u8>,
    cut: Option<usize>,
) -> (
    Client,
    std::sync::Arc<std::sync::atomic::AtomicU32>,
    tokio::task::JoinHandle<()>,
) {
    use std::sync::atomic::{AtomicU32, Ordering};
    let hits = std::sync::Arc::new(AtomicU32::new(0));
    let counted = hits.clone();
    let body = bytes::Bytes::from(body);
    let app = axum::Router::new().route(
        "/api/2/reports/{id}/stored/{stored}",
        axum::routing::get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            let body = body.clone();
            async move {
                let end = cut.unwrap_or(body.len());
                let pieces: Vec<Result<bytes::Bytes, std::io::Error>> = body[..end]
                    .chunks(64 * 1024)
                    .map(|piece| Ok(body.slice_ref(piece)))
                    .chain(cut.map(|_| Err(std::io::Error::other("cut"))))
                    .collect();
                let len = body.len();
                (
                    [
                        (axum::http::header::CONTENT_TYPE, "text/csv".to_owned()),
                        (axum::http::header::CONTENT_LENGTH, len.to_string()),
                    ],
                    axum::body::Body::from_stream(futures_util::stream::iter(pieces)),
                )
            }
        }),
    );
    let (client, server) = serve_downloads(app).await;
    (client, hits, server)
}

async fn fetch_large(
    client: &Client,
    dest: &Path,
    announced: u64,
    size: SizePolicy,
) -> Result<Downloaded, DownloadError> {
    let policy = Policy {
        attempts: 2,
        size,
        ..Policy::default()
    };
    let fetch = fetch_to_file(
        client,
        "r",
        "s",
        Some(announced),
        dest,
        csv_v2_inspection(),
        policy,
    );
    tokio::time::timeout(Duration::from_secs(60), fetch)
        .await
        .expect("the download ends")
}

/// Attack, end to end: a large file cut mid-body (after its check may have fallen behind) is
/// fetched again and fails, without a hang and without a file; sent whole but larger than
/// announced, it fails the size check, or with `warn` is kept with the facts of every byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_cut_or_larger_than_announced_ends_cleanly() {
    use std::sync::atomic::Ordering;
    let body = vendor_csv(200_000);
    assert!(
        body.len() as u64 > LARGE_BYTES + (2 << 20),
        "{}",
        body.len()
    );
    let expected = csv_v2_inspection().inspect(body.as_slice()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("r.csv");
    let (client, hits, server) = serve_large(body.clone(), Some(body.len() - 3_000_000)).await;
    let error = fetch_large(&client, &dest, body.len() as u64, SizePolicy::Required)
        .await
        .unwrap_err();
    assert!(matches!(error, DownloadError::Broken { .. }), "{error}");
    assert_eq!(hits.load(Ordering::SeqCst), 2, "fetched again");
    assert!(!dest.exists());
    server.abort();

    let (client, _, server) = serve_large(body.clone(), None).await;
    let announced = LARGE_BYTES;
    let error = fetch_large(&client, &dest, announced, SizePolicy::Required)
        .await
        .unwrap_err();
    assert!(
        matches!(error, DownloadError::SizeMismatch { .. }),
        "{error}"
    );
    assert!(!dest.exists());
    let done = fetch_large(&client, &dest, announced, SizePolicy::Warn)
        .await
        .unwrap();
    assert_eq!(done.bytes, body.len() as u64);
    assert_eq!(done.inspected, expected);
    assert!(std::fs::read(&dest).unwrap() == body);
    server.abort();
}

/// Attack: a large file's check that fails at once (an HTML page, a header it does not know)
/// stops taking chunks while the transfer goes on: the file is still written and hashed
/// whole, and the check's finding is the one a read from memory gives.
#[tokio::test]
async fn a_check_that_fails_early_lets_a_large_transfer_go_on() {
    let mut html = b"<html><title>Sign in</title>".to_vec();
    html.resize(3 << 20, b'x');
    let mut unknown = b"col_a,col_b\n".to_vec();
    unknown.extend(vendor_csv(30_000));
    for body in [html, unknown] {
        let expected = csv_v2_inspection().inspect(body.as_slice()).unwrap();
        assert!(expected.content_check.problem.is_some());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("large.csv");
        let file = std::fs::File::create(&path).unwrap();
        let read_back = std::fs::File::open(&path).unwrap();
        let mut workers = Workers::start(file, Some(read_back), csv_v2_inspection(), true);
        for batch in body.chunks(BATCH_BYTES / 3) {
            assert!(
                workers
                    .hand_over(vec![bytes::Bytes::copy_from_slice(batch)], false)
                    .await
            );
        }
        let work = tokio::time::timeout(Duration::from_secs(30), workers.finish())
            .await
            .expect("the workers end")
            .unwrap();
        assert_eq!(work.written, Some(body.len() as u64));
        assert_eq!(work.hashed.unwrap().0, body.len() as u64);
        assert_eq!(work.inspected, Some(expected));
        assert!(std::fs::read(&path).unwrap() == body);
    }
}

/// Attack: the download is cancelled (the run stopped) while it waits for a large file's
/// check, or the check is told after it began reading the file. The check read on to the
/// file's end — gigabytes, on a thread nobody joins — for a file nobody keeps: `finish`
/// disarmed the abandonment before waiting, and a check reading the file never looked again.
#[tokio::test]
async fn a_check_stops_when_the_download_is_cancelled_while_it_reads_the_file() {
    let body = vendor_csv(60_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.csv");
    let file = std::fs::File::create(&path).unwrap();
    let read_back = std::fs::File::open(&path).unwrap();
    let mut workers = Workers::start(file, Some(read_back), csv_v2_inspection(), true);
    let progress = Arc::clone(workers.progress.as_ref().unwrap());
    workers.stop_feeding_check();
    for batch in body.chunks(BATCH_BYTES) {
        assert!(
            workers
                .hand_over(vec![bytes::Bytes::copy_from_slice(batch)], true)
                .await
        );
    }
    // Cancelled while it waits for the threads (the check of 6 MiB takes far longer).
    let cancelled = tokio::time::timeout(Duration::from_millis(1), workers.finish()).await;
    assert!(cancelled.is_err(), "the workers finished within 1 ms");
    // A check reading this download's file from now on stops, whether or not the writer
    // had finished before the cancel.
    let (sender, inbox) = tokio::sync::mpsc::channel(1);
    drop(sender);
    let behind = Arc::new(follow::Behind::default());
    behind.set();
    let mut check = follow::Following::new(
        Chunks {
            inbox,
            pending: Vec::new().into_iter(),
        },
        behind,
        progress,
        Some(std::fs::File::open(&path).unwrap()),
    );
    let read = tokio::task::spawn_blocking(move || {
        std::io::Read::read_to_end(&mut check, &mut Vec::new())
    });
    let read = tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("the check ends")
        .unwrap();
    assert!(
        read.as_ref()
            .is_err_and(|e| e.to_string().contains("abandoned")),
        "{read:?}"
    );
}

/// A loopback server sending `chunks` as they are, `gap` apart (so the client gets them
/// apart), with the given encoding and type and no length.
async fn serve_chunks(
    chunks: Vec<Vec<u8>>,
    encoding: &'static str,
    content_type: &'static str,
    gap: Duration,
) -> (Client, tokio::task::JoinHandle<()>) {
    let chunks: Vec<bytes::Bytes> = chunks.into_iter().map(bytes::Bytes::from).collect();
    let app = axum::Router::new().route(
        "/api/2/reports/{id}/stored/{stored}",
        axum::routing::get(move || {
            let chunks = chunks.clone();
            async move {
                let body = futures_util::stream::unfold(0usize, move |n| {
                    let chunks = chunks.clone();
                    async move {
                        let chunk = chunks.get(n)?.clone();
                        if n > 0 && !gap.is_zero() {
                            tokio::time::sleep(gap).await;
                        }
                        Some((Ok::<_, std::io::Error>(chunk), n + 1))
                    }
                });
                (
                    [
                        (axum::http::header::CONTENT_TYPE, content_type),
                        (axum::http::header::CONTENT_ENCODING, encoding),
                    ],
                    axum::body::Body::from_stream(body),
                )
            }
        }),
    );
    serve_downloads(app).await
}

/// Attack, end to end: a body's first byte sent alone (plain or gzip, large or not), bodies of
/// 0 to 3 bytes, and a dense gzip stream against a small announced size or none. The sniffing
/// holds a lone first byte back: it must come out first, once; a dense stream ends with a size
/// error, never a file.
#[tokio::test]
async fn a_body_sent_a_byte_at_first_or_dense_arrives_whole_or_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("r.csv");
    let body = vendor_csv(20_000);
    let expected = csv_v2_inspection().inspect(body.as_slice()).unwrap();
    let compressed = gzip(&body);
    let gap = Duration::from_millis(20);
    for (sent, encoding) in [(&body, "identity"), (&compressed, "gzip")] {
        let mut chunks = vec![sent[..1].to_vec(), sent[1..2].to_vec(), sent[2..5].to_vec()];
        chunks.extend(sent[5..].chunks(64 * 1024).map(<[u8]>::to_vec));
        let (client, server) = serve_chunks(chunks, encoding, "text/csv", gap).await;
        for announced in [None, Some(LARGE_BYTES)] {
            let done = fetch_to_file(
                &client,
                "r",
                "s",
                announced,
                &dest,
                csv_v2_inspection(),
                Policy {
                    attempts: 1,
                    size: SizePolicy::Off,
                    ..Policy::default()
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{encoding}, {announced:?}: {e}"));
            assert_eq!(done.inspected, expected, "{encoding}, {announced:?}");
            assert!(
                std::fs::read(&dest).unwrap() == body,
                "{encoding}, {announced:?}"
            );
        }
        server.abort();
    }
    for tiny in [&b""[..], b"\x1f", b"\x1fa", b"a\x1f\x8b", b"\x8b\x1f"] {
        let chunks = tiny.chunks(1).map(<[u8]>::to_vec).collect();
        let (client, server) = serve_chunks(chunks, "identity", "text/csv", gap).await;
        let done = fetch_to_file(
            &client,
            "r",
            "s",
            None,
            &dest,
            csv_inspection(),
            Policy::default(),
        )
        .await
        .unwrap();
        assert_eq!(done.bytes, tiny.len() as u64);
        assert_eq!(std::fs::read(&dest).unwrap(), tiny);
        server.abort();
    }
    // The gzip magic alone, or followed by what is not gzip: an error, never a file.
    for broken in [
        &b"\x1f\x8b"[..],
        b"\x1f\x8b\x08",
        b"\x1f\x8bnot gzip at all",
    ] {
        let chunks = broken.chunks(1).map(<[u8]>::to_vec).collect();
        let (client, server) = serve_chunks(chunks, "gzip", "text/csv", Duration::ZERO).await;
        let dest = dir.path().join("broken.csv");
        let error = fetch_to_file(
            &client,
            "r",
            "s",
            None,
            &dest,
            csv_inspection(),
            Policy::default(),
        )
        .await
        .unwrap_err();
        assert!(matches!(error, DownloadError::Gzip { .. }), "{error}");
        assert!(!dest.exists());
        server.abort();
    }
    // 64 MiB of zeros in 64 KiB: a small announced size, or none and a small cap.
    let bomb = gzip(&vec![0u8; 64 << 20]);
    let (client, server) = serve_chunks(vec![bomb], "gzip", "text/csv", Duration::ZERO).await;
    for announced in [Some(1000), None] {
        let dest = dir.path().join("bomb.csv");
        let error = fetch_to_file(
            &client,
            "r",
            "s",
            announced,
            &dest,
            csv_inspection(),
            Policy {
                attempts: 1,
                max_file_size: 32 << 20,
                ..Policy::default()
            },
        )
        .await
        .unwrap_err();
        match announced {
            Some(_) => assert!(matches!(error, DownloadError::Oversized { .. }), "{error}"),
            None => assert!(matches!(error, DownloadError::TooLarge { .. }), "{error}"),
        }
        assert!(!dest.exists());
    }
    server.abort();
}

/// Attack: an HTML page whose first chunk is one byte. The sniffing held that byte back and
/// the quote dropped it: the error said the page begins "".
#[tokio::test]
async fn an_html_page_sent_a_byte_first_is_quoted_from_its_first_byte() {
    let (client, server) = serve_chunks(
        vec![b"<".to_vec(), b"html><title>Sign in</title>".to_vec()],
        "identity",
        "text/html",
        Duration::from_millis(50),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let error = fetch_to_file(
        &client,
        "r",
        "s",
        None,
        &dir.path().join("r.csv"),
        csv_inspection(),
        Policy::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, DownloadError::WrongContentType { ref start, .. } if start.starts_with('<')),
        "{error}"
    );
    server.abort();
}
