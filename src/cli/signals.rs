//! CI cancels a job with SIGINT or SIGTERM. The first signal stops the run gracefully (no new
//! reports, in-flight work abandoned, state and records written); a second one exits at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio_util::sync::CancellationToken;

pub struct Interruption {
    code: Arc<AtomicU8>,
}

impl Interruption {
    /// Starts listening for SIGINT (exit 130) and SIGTERM (exit 143); the first one cancels
    /// `cancel`.
    pub fn listen(cancel: CancellationToken) -> Self {
        let code = Arc::new(AtomicU8::new(0));
        let (token, slot) = (cancel, code.clone());
        tokio::spawn(async move {
            let Some(mut signals) = Signals::install() else {
                tracing::warn!(
                    "cannot listen for SIGINT/SIGTERM; an interruption will not be graceful"
                );
                return;
            };
            loop {
                let Some(received) = signals.next().await else {
                    return;
                };
                if token.is_cancelled() {
                    if super::progress::human_stderr() {
                        eprintln!("second signal: exiting now");
                    }
                    std::process::exit(i32::from(received));
                }
                slot.store(received, Ordering::SeqCst);
                tracing::warn!(
                    "received {}: finishing up (no new reports; state, manifest and summary are written); send it again to exit at once",
                    if received == 130 { "SIGINT" } else { "SIGTERM" }
                );
                token.cancel();
            }
        });
        Self { code }
    }

    /// The exit code the received signal asks for, if one came.
    pub fn exit_code(&self) -> Option<u8> {
        match self.code.load(Ordering::SeqCst) {
            0 => None,
            code => Some(code),
        }
    }
}

#[cfg(unix)]
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> Option<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Some(Self {
            interrupt: signal(SignalKind::interrupt()).ok()?,
            terminate: signal(SignalKind::terminate()).ok()?,
        })
    }

    async fn next(&mut self) -> Option<u8> {
        tokio::select! {
            received = self.interrupt.recv() => received.map(|()| 130),
            received = self.terminate.recv() => received.map(|()| 143),
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> Option<Self> {
        Some(Self)
    }

    async fn next(&mut self) -> Option<u8> {
        tokio::signal::ctrl_c().await.ok().map(|()| 130)
    }
}
