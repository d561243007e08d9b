//! Writers: pure functions from a run's results to text ([`checksums`], [`manifest`],
//! [`summary`]), and the one place that puts such text on disk ([`write_atomic`]).

pub mod checksums;
pub mod manifest;
pub mod summary;

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use crate::results::RunResult;

pub const SHA256SUMS: &str = "SHA256SUMS";
pub const MANIFEST: &str = "manifest.json";
pub const SUMMARY: &str = "summary.md";

/// Writes `SHA256SUMS`, `manifest.json` and `summary.md` into `dir`, each atomically.
pub fn write_run_outputs(dir: &Path, result: &RunResult) -> io::Result<()> {
    fs::create_dir_all(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display())))?;
    write_atomic(&dir.join(SUMMARY), summary::render(result).as_bytes())?;
    write_atomic(
        &dir.join(SHA256SUMS),
        checksums::render(&result.files()).as_bytes(),
    )?;
    // Last, so that an interrupted run leaves an older manifest that `verify` will flag as
    // disagreeing with the new SHA256SUMS, rather than a new manifest that looks complete.
    write_atomic(&dir.join(MANIFEST), manifest::render(result).as_bytes())
}

/// Replaces `path` with `bytes` so that readers see either the old file or the whole new one:
/// the bytes go to a hidden temporary file in the same folder, reach the disk, then take the
/// final name by rename. A symbolic link at `path` is refused rather than replaced or followed.
/// Errors name the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let named =
        |e: io::Error| io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()));
    let file_name = path.file_name().ok_or_else(|| {
        named(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path does not end in a file name",
        ))
    })?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(named(io::Error::new(
                io::ErrorKind::InvalidInput,
                "it is a symbolic link; remove it or choose another output folder",
            )));
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(named(e)),
    }

    // A leading dot keeps a leftover (after a crash) out of `verify`'s list of extra files, and
    // the name says what it was for; cut so that the temporary name stays within the 255 bytes
    // file systems allow even when the final name is close to that.
    let name = file_name.to_string_lossy();
    let mut cut = name.len().min(64);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let prefix = format!(".{}.", &name[..cut]);
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        // tempfile's default 0600 would make reports unreadable to the rest of a team; 0666
        // goes through the umask like any other new file.
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    let mut temp = builder.tempfile_in(dir).map_err(named)?;
    temp.write_all(bytes).map_err(named)?;
    temp.as_file().sync_all().map_err(named)?;
    temp.persist(path).map_err(|e| named(e.error))?;
    sync_dir(dir);
    Ok(())
}

/// Makes the rename itself durable. Best effort: some file systems refuse to sync a folder, and
/// the file's content is already safe either way.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(handle) = fs::File::open(dir) {
        let _ = handle.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.txt"]);
    }

    #[cfg(unix)]
    #[test]
    fn new_files_are_readable_by_others_as_the_umask_allows() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        write_atomic(&path, b"x").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let plain = dir.path().join("plain.txt");
        fs::write(&plain, b"x").unwrap();
        assert_eq!(mode(&path), mode(&plain));
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_symlink_and_leaves_its_target_alone() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.txt");
        fs::write(&target, b"precious").unwrap();
        let link = dir.path().join("summary.md");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = write_atomic(&link, b"overwrite").unwrap_err();
        assert!(err.to_string().contains("summary.md"), "{err}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(fs::read(&target).unwrap(), b"precious");
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn long_names_fit_with_their_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("{}.csv", "ü".repeat(120)));
        write_atomic(&path, b"x").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"x");
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no such folder").join("x.txt");
        let err = write_atomic(&path, b"x").unwrap_err();
        assert!(err.to_string().contains("x.txt"), "{err}");
    }

    #[test]
    fn writes_the_three_run_files() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let result = manifest::tests::contract_run();
        write_run_outputs(&out, &result).unwrap();
        assert_eq!(
            fs::read_to_string(out.join(SHA256SUMS)).unwrap(),
            checksums::render(&result.files())
        );
        assert_eq!(
            fs::read_to_string(out.join(MANIFEST)).unwrap(),
            manifest::render(&result)
        );
        assert_eq!(
            fs::read_to_string(out.join(SUMMARY)).unwrap(),
            summary::render(&result)
        );
    }
}
