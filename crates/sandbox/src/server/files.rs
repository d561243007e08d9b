//! Downloads of stored files: whole or streamed, gzip-compressed as the real service keeps them,
//! cut short when a fault asks.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream;

use crate::content::ChunkCursor;

use super::*;

/// True when `Accept-Encoding` lists gzip without `q=0`.
pub(super) fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

pub(crate) fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    // GzEncoder writes mtime 0 and no file name, so equal input gives equal output.
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        flate2::Compression::default(),
    );
    enc.write_all(data)?;
    enc.finish()
}

pub(super) enum Source {
    Whole(Option<Bytes>),
    Chunks(ChunkCursor),
}

impl Source {
    fn next(&mut self) -> Option<Bytes> {
        match self {
            Source::Whole(b) => b.take(),
            Source::Chunks(c) => c.next_chunk(),
        }
    }
}

pub(super) struct StreamState {
    source: Source,
    sent: u64,
    /// With a truncate fault: stop after this many bytes and fail the body.
    limit: Option<u64>,
    finished: bool,
    /// Told (report's stats index) once `total` bytes have been handed over; hyper stops
    /// polling a body at its Content-Length, so the end of the stream is never seen.
    done: Option<(Arc<Shared>, usize, u64)>,
}

/// A body that either streams everything or, with a limit, sends that much
/// and then errors, which makes hyper abort the connection mid-body (so the
/// client sees a short read against the announced Content-Length, not a clean end).
pub(super) fn body_stream(
    source: Source,
    limit: Option<u64>,
    done: Option<(Arc<Shared>, usize, u64)>,
) -> Body {
    let state = StreamState {
        source,
        sent: 0,
        limit,
        finished: false,
        done,
    };
    let s = stream::unfold(state, |mut st| async move {
        if st.finished {
            return None;
        }
        if let Some(limit) = st.limit
            && st.sent >= limit
        {
            st.finished = true;
            // Let hyper flush the first half before the connection is torn down.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let err = std::io::Error::other("sandbox: injected truncated download");
            return Some((Err(err), st));
        }
        let mut chunk = st.source.next()?;
        if let Some(limit) = st.limit {
            let room = usize::try_from(limit - st.sent).unwrap_or(usize::MAX);
            chunk.truncate(room);
        }
        st.sent += chunk.len() as u64;
        let complete = matches!(&st.done, Some((_, _, total)) if st.sent >= *total);
        if complete && let Some((shared, stats_index, _)) = st.done.take() {
            shared.download_done(stats_index);
        }
        Some((Ok::<Bytes, std::io::Error>(chunk), st))
    });
    Body::from_stream(s)
}

pub(super) fn file_response(
    content_type: &'static str,
    gzip: bool,
    length: u64,
    body: Body,
) -> Response {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp
}

pub(super) async fn download(
    State(shared): State<Arc<Shared>>,
    Path((id, stored_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&shared, &headers)?;
    let (body, compressed, stats_index) = {
        let mut guard = shared.lock();
        let inner = &mut *guard;
        let report = inner
            .reports
            .get(&id.to_ascii_lowercase())
            .filter(|r| !r.deleted)
            .ok_or_else(report_not_found)?;
        let file = report
            .files
            .iter()
            .chain(report.stale.iter())
            .find(|f| f.id.eq_ignore_ascii_case(&stored_id))
            .ok_or_else(|| ApiError::not_found("Stored report not found"))?;
        if report.phase(Instant::now()) != Phase::Done {
            return Err(ApiError::not_found(
                "Stored report not found: it has not been saved yet",
            ));
        }
        if report.fail {
            return Err(ApiError::not_found(
                "Stored report not found: its generation failed",
            ));
        }
        let at = shared.micros(Instant::now());
        if let Some(created) = inner.stats.reports.get_mut(report.stats_index) {
            created.first_download_us.get_or_insert(at);
        }
        (
            file.body.clone(),
            file.compressed.clone(),
            report.stats_index,
        )
    };

    let truncate = shared.take_truncate_fault();
    let total = body.len();
    let body_type = body.content_type;
    if total > STREAM_THRESHOLD {
        let limit = truncate.then_some(total / 2);
        let done = Some((shared.clone(), stats_index, total));
        let stream = body_stream(Source::Chunks(ChunkCursor::new(body)), limit, done);
        return Ok(file_response(body_type, false, total, stream));
    }

    // Without the header the body is the stored `.gz` file itself, as an opaque download.
    let bare_gzip = shared.scenario.gzip_without_header;
    let use_gzip = !bare_gzip && shared.scenario.gzip && accepts_gzip(&headers);
    if use_gzip {
        shared.gzip_downloads.fetch_add(1, Ordering::Relaxed);
    }
    let bytes = if bare_gzip || use_gzip {
        compressed_body(body, compressed).await?
    } else {
        body.to_bytes()
    };
    let content_type = if bare_gzip {
        "application/octet-stream"
    } else {
        body_type
    };
    let length = bytes.len() as u64;
    let out = if truncate {
        body_stream(Source::Whole(Some(bytes)), Some(length / 2), None)
    } else {
        shared.download_done(stats_index);
        Body::from(bytes)
    };
    Ok(file_response(content_type, use_gzip, length, out))
}
