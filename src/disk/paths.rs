//! Turning names that users and servers choose into safe, unique path components.

use std::io;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

const MAX_COMPONENT_BYTES: usize = 80;
/// Bytes of SHA-256 appended to a changed name: 64 bits, so that names which clean up the same
/// way cannot be made to collide by searching.
const HASH_BYTES: usize = 8;

const WINDOWS_RESERVED: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// The records a period's delivery keeps beside its tenants' folders (see `src/output/`): a
/// tenant named like one of them must not get a folder of that name. Compared without case, for
/// the file systems of macOS and Windows.
pub(crate) const DELIVERY_RECORDS: [&str; 4] =
    ["SHA256SUMS", "manifest.json", "summary.md", "billing.csv"];

/// Maps any name to one folder or file name that is valid on Linux, macOS and Windows and cannot
/// climb out of its parent. A name that is already safe is kept as is; any other gets a hash of
/// the original appended, so that two different names never map to the same component.
pub fn safe_component(name: &str) -> String {
    let mut cleaned = String::with_capacity(name.len());
    for c in name.chars() {
        let keep = c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ' ' | '+' | '@');
        let replacement = if keep { c } else { '_' };
        // Collapse runs of replacements so `a///b` does not become `a___b`.
        if !(replacement == '_' && !keep && cleaned.ends_with('_')) {
            cleaned.push(replacement);
        }
    }
    let trimmed = cleaned.trim_matches(|c| c == '.' || c == ' ');
    let mut safe = truncate_to_boundary(trimmed, MAX_COMPONENT_BYTES).to_owned();
    let stem = safe.split('.').next().unwrap_or("").to_ascii_uppercase();
    if WINDOWS_RESERVED.contains(&stem.as_str()) {
        // `CON.txt` is reserved whatever follows the dot: change the stem itself.
        safe.insert(0, '_');
    }
    // A kept name never looks like a changed one (`<name>-<8 hex>`), so a tenant named like
    // another's cleaned folder cannot land in it.
    let is_record = DELIVERY_RECORDS
        .iter()
        .any(|record| record.eq_ignore_ascii_case(&safe));
    if safe.is_empty() || safe != name || looks_hashed(&safe) || is_record {
        let digest = Sha256::digest(name.as_bytes());
        if safe.is_empty() {
            safe.push_str("tenant");
        }
        safe.push('-');
        safe.push_str(&hex::encode(&digest[..HASH_BYTES]));
    }
    safe
}

/// Whether a name ends like the output of a change: `-` and the hash's lowercase hex digits.
fn looks_hashed(name: &str) -> bool {
    let bytes = name.as_bytes();
    let suffix = 2 * HASH_BYTES;
    bytes.len() > suffix
        && bytes[bytes.len() - suffix - 1] == b'-'
        && bytes[bytes.len() - suffix..]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

fn truncate_to_boundary(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Opens an existing file for reading only if it is a regular file reached without a symbolic
/// link as its last component: a report file or journal swapped for a link to `/dev/zero`, a
/// FIFO or a device would otherwise be read without end or block the run. The file is looked at
/// before it is opened, and what was opened must be that same file.
pub(crate) fn open_regular(path: &Path) -> io::Result<std::fs::File> {
    let refuse = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} {what}; refusing to read it", path.display()),
        )
    };
    let before = std::fs::symlink_metadata(path)?;
    if before.file_type().is_symlink() {
        return Err(refuse("is a symbolic link"));
    }
    if !before.is_file() {
        return Err(refuse("is not a regular file"));
    }
    // Without blocking: a FIFO swapped in after the look above would otherwise hang `open`
    // itself, before the check below could refuse it. Regular files ignore the flag.
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    let file = options.open(path)?;
    let after = file.metadata()?;
    if !after.is_file() {
        return Err(refuse("is not a regular file"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if (before.dev(), before.ino()) != (after.dev(), after.ino()) {
            return Err(refuse("was replaced while it was opened"));
        }
    }
    Ok(file)
}

/// [`open_regular`] for `base/relative`, refusing a symbolic link or anything but a folder on
/// the way as well: a period or tenant folder swapped for a link must not lead a re-run to
/// read (and call "ok") a file outside `base`.
pub(crate) fn open_regular_inside(base: &Path, relative: &str) -> io::Result<std::fs::File> {
    match existing_inside(base, relative)? {
        Some(path) => open_regular(&path),
        None => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} does not exist", base.join(relative).display()),
        )),
    }
}

/// A regular file's bytes ([`open_regular`]), refused above `max` bytes: a record we read whole
/// (a manifest, `SHA256SUMS`) swapped for something endless must not fill memory.
pub(crate) fn read_regular(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    open_regular(path)?
        .take(max.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is larger than {max} bytes; refusing to read it",
                path.display()
            ),
        ));
    }
    Ok(bytes)
}

/// Creates `base/relative` folder by folder, refusing to pass through a symbolic link or
/// anything that is not a folder, so that nothing is ever written outside `base`.
pub fn ensure_dir_inside(base: &Path, relative: &str) -> io::Result<PathBuf> {
    let mut dir = base.to_path_buf();
    for component in Path::new(relative).components() {
        let Component::Normal(name) = component else {
            return Err(io::Error::other(format!(
                "refusing the path `{relative}`: it must stay inside {}",
                base.display()
            )));
        };
        dir.push(name);
        match std::fs::symlink_metadata(&dir) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(io::Error::other(format!(
                    "{} is a symbolic link; refusing to write through it (remove it or choose another output folder)",
                    dir.display()
                )));
            }
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::other(format!(
                    "{} exists and is not a folder",
                    dir.display()
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => match std::fs::create_dir(&dir) {
                Ok(()) => {}
                // Another report of the same period may have created it a moment ago.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
    Ok(dir)
}

/// Looks up `base/relative` without creating or following anything: every folder on the way
/// must be a real folder (not a symbolic link), so a file about to be moved or read is one inside
/// `base`, never one a link leads to. Returns the path when something (of any kind) is there,
/// `None` when nothing is.
pub(crate) fn existing_inside(base: &Path, relative: &str) -> io::Result<Option<PathBuf>> {
    let mut path = base.to_path_buf();
    let components: Vec<Component<'_>> = Path::new(relative).components().collect();
    if components.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing the empty path inside {}", base.display()),
        ));
    }
    for (at, component) in components.iter().enumerate() {
        let Component::Normal(name) = component else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "refusing the path `{relative}`: it must stay inside {}",
                    base.display()
                ),
            ));
        };
        path.push(name);
        let metadata = match std::fs::symlink_metadata(&path) {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if at + 1 < components.len() && (metadata.file_type().is_symlink() || !metadata.is_dir()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is not a folder (a symbolic link or another kind of file); refusing to go through it",
                    path.display()
                ),
            ));
        }
    }
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_kept() {
        assert_eq!(safe_component("acme"), "acme");
        assert!(safe_component("Globex Corp.").starts_with("Globex Corp-"));
        assert_eq!(safe_component("Müller GmbH"), "Müller GmbH");
    }

    #[test]
    fn hostile_names_stay_inside_and_distinct() {
        for name in [
            "..", ".", "../etc", "a/b", "a\\b", "a\0b", "CON", "con.txt", "", " ", "x\ny",
        ] {
            let safe = safe_component(name);
            assert!(
                !safe.is_empty() && safe != "." && safe != "..",
                "{name:?} -> {safe:?}"
            );
            assert!(
                !safe.contains(['/', '\\', '\0', '\n']),
                "{name:?} -> {safe:?}"
            );
            assert!(!safe.starts_with('.'), "{name:?} -> {safe:?}");
        }
        for record in [
            "billing.csv",
            "SHA256SUMS",
            "sha256sums",
            "Manifest.JSON",
            "summary.md",
        ] {
            let safe = safe_component(record);
            assert!(
                safe.starts_with(record) && safe.len() > record.len(),
                "{safe}"
            );
        }
        assert_ne!(safe_component("a/b"), safe_component("a\\b"));
        assert_ne!(safe_component("a/b"), safe_component("a_b"));
        let long = "x".repeat(500);
        assert!(safe_component(&long).len() <= MAX_COMPONENT_BYTES + 1 + 2 * HASH_BYTES);
    }

    #[cfg(unix)]
    #[test]
    fn only_regular_files_are_opened_for_reading() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("report.csv");
        std::fs::write(&plain, "a,b\n").unwrap();
        assert!(open_regular(&plain).is_ok());
        let link = dir.path().join("zero.csv");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let err = open_regular(&link).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        let fifo = dir.path().join("fifo.csv");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            // Opening a FIFO for reading would block until a writer comes: it is refused first.
            let err = open_regular(&fifo).unwrap_err().to_string();
            assert!(err.contains("not a regular file"), "{err}");
        }
        assert!(open_regular(dir.path()).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn existing_files_are_found_but_never_through_a_symlink() {
        let base = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("x.csv"), "precious").unwrap();
        std::fs::create_dir_all(base.path().join("2026-10/acme")).unwrap();
        std::fs::write(base.path().join("2026-10/acme/x.csv"), "a").unwrap();
        let found = existing_inside(base.path(), "2026-10/acme/x.csv").unwrap();
        assert_eq!(found, Some(base.path().join("2026-10/acme/x.csv")));
        assert_eq!(
            existing_inside(base.path(), "2026-10/acme/y.csv").unwrap(),
            None
        );
        assert_eq!(
            existing_inside(base.path(), "2026-09/acme/y.csv").unwrap(),
            None
        );
        std::os::unix::fs::symlink(outside.path(), base.path().join("2026-10/globex")).unwrap();
        let err = existing_inside(base.path(), "2026-10/globex/x.csv").unwrap_err();
        assert!(err.to_string().contains("not a folder"), "{err}");
        for hostile in ["/etc/passwd", "../x", "2026-10/../../x", ""] {
            assert!(existing_inside(base.path(), hostile).is_err(), "{hostile}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn folders_are_created_but_never_through_a_symlink() {
        let base = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let made = ensure_dir_inside(base.path(), "2026-10/acme").unwrap();
        assert!(made.is_dir() && made.starts_with(base.path()));
        std::os::unix::fs::symlink(outside.path(), base.path().join("2026-11")).unwrap();
        let err = ensure_dir_inside(base.path(), "2026-11/acme").unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        assert!(ensure_dir_inside(base.path(), "../x").is_err());
    }
}
