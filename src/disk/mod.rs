//! The file system at the bottom of the flow, for every module: files replaced atomically and
//! durably (a temporary file beside the target, synced, renamed, the folder synced), the
//! temporary files a killed run leaves, and safe opening of paths that users and servers chose
//! ([`paths`]).

pub mod paths;

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Replaces `path` with `bytes` so that readers see either the old file or the whole new one:
/// the bytes go to a hidden temporary file in the same folder, reach the disk, then take the
/// final name by rename. A symbolic link at `path` is refused rather than replaced or followed.
/// Errors name the file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |out| out.write_all(bytes))
}

/// [`write_atomic`] for content written piece by piece: `fill` writes it (buffered) and returns
/// what it found; on its error nothing replaces `path`.
pub(crate) fn write_atomic_with<T>(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<T>,
) -> io::Result<T> {
    write_atomic_via(path, false, fill)
}

/// [`write_atomic_with`] for content that may be large: written around the page cache, as a
/// large download is (`direct_io`), since it is synced before it counts anyway.
pub(crate) fn write_atomic_large_with<T>(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<T>,
) -> io::Result<T> {
    write_atomic_via(path, true, fill)
}

fn write_atomic_via<T>(
    path: &Path,
    large: bool,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<T>,
) -> io::Result<T> {
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

    let mut temp = temp_file_beside(dir, file_name, ".tmp").map_err(named)?;
    let value = if large {
        let file = temp.as_file().try_clone().map_err(named)?;
        let mut direct = crate::direct_io::FileWriter::new(file, true);
        let value = fill(&mut direct).map_err(named)?;
        direct.finish_unsynced().map_err(named)?;
        value
    } else {
        let mut buffered = io::BufWriter::with_capacity(256 * 1024, temp.as_file_mut());
        let value = fill(&mut buffered).map_err(named)?;
        buffered.flush().map_err(named)?;
        value
    };
    temp.as_file().sync_all().map_err(named)?;
    persist_durably(temp, path, dir).map_err(named)?;
    Ok(value)
}

/// Renames a temporary file, whose bytes are already synced, into place in `dir`, and makes the
/// rename itself survive a crash before anything counts the file as there.
pub(crate) fn persist_durably(
    temp: tempfile::NamedTempFile,
    path: &Path,
    dir: &Path,
) -> io::Result<()> {
    temp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir);
    Ok(())
}

/// Suffixes of the temporary files [`temp_file_beside`] makes for this tool.
const TEMP_SUFFIXES: [&str; 2] = [".partial", ".tmp"];

/// Whether `name` is one of our temporary files: `.<name>.<6 random characters><suffix>`.
pub(crate) fn is_our_temp_file(name: &str) -> bool {
    let Some(stem) = TEMP_SUFFIXES
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
    else {
        return false;
    };
    let Some((head, random)) = stem.rsplit_once('.') else {
        return false;
    };
    head.starts_with('.')
        && head.len() > 1
        && random.len() == 6
        && random.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Removes the temporary files a killed run left in `out_dir` (up to the tenant folders and the
/// state folder), never following a symbolic link. Only for a run that holds the folder's lock:
/// then no other run can be writing them. Returns how many were removed.
pub(crate) fn remove_stale_temp_files(out_dir: &Path) -> usize {
    fn walk(dir: &Path, depth: usize, removed: &mut usize) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name();
            if kind.is_dir() && depth > 0 {
                walk(&entry.path(), depth - 1, removed);
            } else if kind.is_file()
                && is_our_temp_file(&name.to_string_lossy())
                && fs::remove_file(entry.path()).is_ok()
            {
                *removed += 1;
            }
        }
    }
    let mut removed = 0;
    // Period folder, tenant folder: two levels below the output folder.
    walk(out_dir, 2, &mut removed);
    removed
}

/// A new temporary file in `dir`, named after the file it will become. A leading dot keeps a
/// leftover (after a crash) out of `verify`'s list of extra files, and the name says what it
/// was for; it is cut so that it stays within the 255 bytes file systems allow even when the
/// final name is close to that.
pub(crate) fn temp_file_beside(
    dir: &Path,
    file_name: &std::ffi::OsStr,
    suffix: &str,
) -> io::Result<tempfile::NamedTempFile> {
    let name = file_name.to_string_lossy();
    let mut cut = name.len().min(64);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let prefix = format!(".{}.", &name[..cut]);
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(suffix);
    #[cfg(unix)]
    {
        // tempfile's default 0600 would make reports unreadable to the rest of a team; 0666
        // goes through the umask like any other new file.
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir)
}

/// Makes the rename itself durable. Best effort: some file systems refuse to sync a folder, and
/// the file's content is already safe either way.
pub(crate) fn sync_dir(dir: &Path) {
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
    fn stale_temporary_files_are_recognised_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let tenant = dir.path().join("2026-10/acme");
        fs::create_dir_all(&tenant).unwrap();
        let stale = temp_file_beside(&tenant, "usage.csv".as_ref(), ".partial").unwrap();
        let (_, stale_path) = stale.keep().unwrap();
        let kept = [
            "usage.csv",
            ".hidden",
            "notes.partial",
            ".a.toolong1.partial",
        ];
        for name in kept {
            fs::write(tenant.join(name), "x").unwrap();
        }
        assert!(is_our_temp_file(".SHA256SUMS.Ab3dE9.tmp"));
        assert_eq!(remove_stale_temp_files(dir.path()), 1);
        assert!(!stale_path.exists());
        for name in kept {
            assert!(tenant.join(name).exists(), "{name}");
        }
    }

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
    fn a_failed_fill_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("billing.csv");
        write_atomic(&path, b"old").unwrap();
        let err = write_atomic_with(&path, |out| {
            out.write_all(b"half")?;
            Err::<(), _>(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("billing.csv"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
