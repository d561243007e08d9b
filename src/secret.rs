//! Credentials that must never reach a log, a file or an error message.

use std::fmt;

/// A client secret or bearer token. `Debug` and `Display` print a placeholder so that a stray
/// `{:?}` in a log line or an error cannot leak it; the only way out is [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value, for the one place that has to send it (an HTTP header).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Replaces every occurrence of this secret in `text`, for messages that echo server text.
    pub fn scrub(&self, text: &str) -> String {
        if self.0.len() < 4 {
            return text.to_owned();
        }
        text.replace(&self.0, "[redacted]")
    }
}

/// Every credential value a client holds or has held (the client secret, `id:secret` and its
/// Basic encoding, each bearer token), so that server text we repeat never carries one: a
/// server or proxy may echo the request's `Authorization` header in an error body.
#[derive(Default)]
pub struct Scrubber {
    values: std::sync::RwLock<Vec<String>>,
}

impl Scrubber {
    /// Adds a value to scrub; true when it was not known yet. Values under 4 characters are
    /// ignored: replacing them would mangle ordinary text and they protect nothing.
    pub fn add(&self, value: &str) -> bool {
        if value.len() < 4 {
            return false;
        }
        // A poisoned lock only means another thread panicked mid-push; the list is still usable.
        let mut values = self.values.write().unwrap_or_else(|p| p.into_inner());
        if values.iter().any(|v| v == value) {
            return false;
        }
        values.push(value.to_owned());
        // Longest first, so a value containing another (`id:secret` holds `secret`) goes whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        true
    }

    /// `text` with every known value replaced by `[redacted]`.
    pub fn scrub(&self, text: &str) -> String {
        let values = self.values.read().unwrap_or_else(|p| p.into_inner());
        let mut out = text.to_owned();
        for value in values.iter() {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), "[redacted]");
            }
        }
        out
    }
}

/// Keeps the secret and tokens this process holds out of core dumps (and out of reach of
/// `ptrace` by other processes of the same user): on Linux the process marks itself
/// non-dumpable. Call it first thing. Elsewhere it does nothing; a failure is only logged
/// later by the caller, as the run itself is unaffected.
pub fn protect_process() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)?;
    Ok(())
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_its_value() {
        let secret = Secret::new("hunter2-very-secret");
        assert!(!format!("{secret:?} {secret}").contains("hunter2"));
        assert_eq!(secret.expose(), "hunter2-very-secret");
        assert_eq!(
            secret.scrub("bad client hunter2-very-secret!"),
            "bad client [redacted]!"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_process_is_not_dumpable() {
        protect_process().unwrap();
        assert_eq!(
            rustix::process::dumpable_behavior().unwrap(),
            rustix::process::DumpableBehavior::NotDumpable
        );
    }

    #[test]
    fn scrubber_removes_every_value_longest_first() {
        let scrubber = Scrubber::default();
        assert!(scrubber.add("s3cret-value"));
        assert!(scrubber.add("client:s3cret-value"));
        assert!(!scrubber.add("s3cret-value"));
        assert!(!scrubber.add("abc"));
        assert_eq!(
            scrubber.scrub("got client:s3cret-value and s3cret-value; abc"),
            "got [redacted] and [redacted]; abc"
        );
    }
}
