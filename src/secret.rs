//! Credentials that must never reach a log, a file or an error message.

use std::fmt;

/// A client secret or bearer token. `Debug` and `Display` print a placeholder so that a stray
/// `{:?}` in a log line or an error cannot leak it; the only way out is [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value, for the one place that has to send it (an HTTP header).
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

/// Every credential value a client holds or has held (the client secret, `id:secret` and its
/// Basic encoding, each bearer token), so that server text we repeat never carries one: a
/// server or proxy may echo the request's `Authorization` header in an error body.
#[derive(Default)]
pub(crate) struct Scrubber {
    values: std::sync::RwLock<Vec<String>>,
}

impl Scrubber {
    /// Adds a value to scrub; true when it was not known yet. Values under 4 characters are
    /// ignored: replacing them would mangle ordinary text and they protect nothing.
    pub(crate) fn add(&self, value: &str) -> bool {
        if value.len() < 4 {
            return false;
        }
        // A poisoned lock only means another thread panicked mid-push; the list is still usable.
        let mut values = self.values.write().unwrap_or_else(|p| p.into_inner());
        if values.iter().any(|v| v == value) {
            return false;
        }
        // A server may echo the value as its JSON encoder or a URL writes it: base64's `/` and
        // `+` come back as `\/` and `\u002B` (PHP, .NET) or `%2F` and `%2B`.
        for spelling in spellings(value) {
            if !values.contains(&spelling) {
                values.push(spelling);
            }
        }
        // Longest first, so a value containing another (`id:secret` holds `secret`) goes whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        true
    }

    /// `text` with every known value replaced by `[redacted]`.
    pub(crate) fn scrub(&self, text: &str) -> String {
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

/// `value` as it is, and as JSON encoders and URLs escape it.
fn spellings(value: &str) -> Vec<String> {
    let mut json_slash = String::new();
    let mut json_unicode = String::new();
    let mut url = String::new();
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                json_slash.push('\\');
                json_slash.push(c);
                json_unicode.push_str(&format!("\\u{:04X}", c as u32));
            }
            '/' => {
                json_slash.push_str("\\/");
                json_unicode.push('/');
            }
            '+' | '<' | '>' | '&' | '\'' => {
                json_slash.push(c);
                json_unicode.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => {
                json_slash.push(c);
                json_unicode.push(c);
            }
        }
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~') {
            url.push(c);
        } else {
            let mut buffer = [0u8; 4];
            for byte in c.encode_utf8(&mut buffer).bytes() {
                url.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    let mut all = vec![value.to_owned()];
    for spelling in [
        json_slash,
        json_unicode.clone(),
        lowercase_escapes(&json_unicode),
        url.clone(),
        url.replace("%20", "+"),
    ] {
        if !all.contains(&spelling) {
            all.push(spelling);
        }
    }
    all
}

/// `\u002B` as `\u002b`: encoders differ in the case of their hex digits.
fn lowercase_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("\\u") {
        let end = (at + 6).min(rest.len());
        out.push_str(&rest[..at + 2]);
        out.push_str(&rest[at + 2..end].to_ascii_lowercase());
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
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
    }

    #[test]
    fn values_of_four_characters_and_more_are_scrubbed_shorter_ones_never() {
        let scrubber = Scrubber::default();
        assert!(!scrubber.add("abc"), "three characters protect nothing");
        assert_eq!(scrubber.scrub("abc and abcd"), "abc and abcd");
        assert!(scrubber.add("wxyz"));
        assert!(!scrubber.add("wxyz"), "known already");
        assert_eq!(scrubber.scrub("a wxyz b"), "a [redacted] b");
        // The longest value goes first, whole, though a shorter one is inside it.
        assert!(scrubber.add("id:wxyz-1"));
        assert_eq!(scrubber.scrub("<id:wxyz-1>"), "<[redacted]>");
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
    fn escaped_and_url_encoded_echoes_are_scrubbed_too() {
        let scrubber = Scrubber::default();
        scrubber.add("YWJj/ZGVm+Z2hp\"q");
        for echo in [
            r#"{"msg":"Basic YWJj\/ZGVm+Z2hp\"q"}"#,
            r#"{"msg":"Basic YWJj/ZGVm\u002BZ2hp\u0022q"}"#,
            r#"{"msg":"Basic YWJj/ZGVm\u002bZ2hp\u0022q"}"#,
            "Basic%20YWJj%2FZGVm%2BZ2hp%22q",
        ] {
            let scrubbed = scrubber.scrub(echo);
            assert!(scrubbed.contains("[redacted]"), "{echo} → {scrubbed}");
            assert!(!scrubbed.contains("ZGVm"), "{echo} → {scrubbed}");
        }
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
