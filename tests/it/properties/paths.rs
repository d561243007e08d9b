//! Path sanitising: hostile tenant names become safe, distinct folder names inside the output
//! folder.

use super::*;

const WINDOWS_RESERVED: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Names from the pieces that break path handling, as well as any Unicode at all.
fn hostile_name() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/".to_owned()),
        Just("\\".to_owned()),
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just("\0".to_owned()),
        Just(" ".to_owned()),
        Just("_".to_owned()),
        Just("-".to_owned()),
        Just("\n".to_owned()),
        Just("\r".to_owned()),
        Just("\t".to_owned()),
        Just("\u{7f}".to_owned()),
        Just("\u{85}".to_owned()),
        Just("\u{202e}".to_owned()),
        Just("\u{feff}".to_owned()),
        Just(":".to_owned()),
        Just("*?\"<>|".to_owned()),
        Just("~".to_owned()),
        Just("CON".to_owned()),
        Just("con".to_owned()),
        Just("Nul".to_owned()),
        Just("aux".to_owned()),
        Just("PRN".to_owned()),
        Just("COM1".to_owned()),
        Just("lpt9".to_owned()),
        Just(".txt".to_owned()),
        Just("acme".to_owned()),
        Just("Müller".to_owned()),
        Just("日本".to_owned()),
        Just("é".to_owned()),
        Just("e\u{301}".to_owned()),
        Just("🦀".to_owned()),
        "[0-9a-f]{8}".prop_map(|s| s),
        "\\PC{1,4}".prop_map(|s| s),
        "\\p{Cc}".prop_map(|s| s),
        (1usize..200, "[a-zé日]").prop_map(|(n, c)| c.repeat(n)),
    ];
    prop_oneof![
        1 => any::<String>(),
        1 => "\\PC{0,120}",
        4 => proptest::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat()),
    ]
}

/// Every rule a component must follow to be valid and harmless on Linux, macOS and Windows.
fn assert_safe(name: &str, safe: &str) -> Result<(), TestCaseError> {
    let show = format!("{name:?} -> {safe:?}");
    prop_assert!(!safe.is_empty(), "empty: {}", show);
    prop_assert!(safe.len() <= 100, "{} bytes: {}", safe.len(), show);
    prop_assert!(
        !safe
            .chars()
            .any(|c| matches!(c, '/' | '\\' | '\0') || c.is_control()),
        "separator, NUL or control character: {}",
        show
    );
    prop_assert!(
        !safe.contains(['<', '>', ':', '"', '|', '?', '*']),
        "character Windows refuses: {}",
        show
    );
    prop_assert!(safe != "." && safe != "..", "{}", show);
    prop_assert!(!safe.starts_with('.'), "starts with a dot: {}", show);
    prop_assert!(
        !safe.ends_with(['.', ' ']),
        "ends with a dot or space: {}",
        show
    );
    // Windows reserves `CON`, `con.txt`, `Com1.tar.gz`, …: the stem before the first dot counts.
    prop_assert!(!is_reserved_stem(safe), "Windows reserved name: {}", show);
    Ok(())
}

/// Whether the part before the first dot is a reserved Windows device name, in any case.
fn is_reserved_stem(name: &str) -> bool {
    let stem = name.split('.').next().unwrap().to_ascii_uppercase();
    WINDOWS_RESERVED.contains(&stem.as_str())
}

/// A second name that is like the first: the variations most likely to clean up the same way.
fn neighbour(name: &str, how: u8, c: char) -> String {
    match how % 10 {
        0 => name.replace('/', "\\"),
        1 => name.replace(['/', '\\', '\0', '\n'], "_"),
        2 => format!("{name}{c}"),
        3 => format!("{c}{name}"),
        4 => format!("{name}."),
        5 => format!("{name} "),
        6 => name.to_uppercase(),
        7 => name.chars().rev().collect(),
        8 => name.chars().skip(1).collect(),
        _ => format!("{name}/"),
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn safe_components_are_safe(name in hostile_name()) {
        assert_safe(&name, &safe_component(&name))?;
    }

    #[test]
    fn safe_components_of_neighbours_differ(
        name in hostile_name(),
        how in any::<u8>(),
        c in prop_oneof![Just('/'), Just('\\'), Just('.'), Just(' '), Just('_'), Just('\0'), any::<char>()],
    ) {
        let other = neighbour(&name, how, c);
        if other != name {
            prop_assert_ne!(safe_component(&name), safe_component(&other), "{:?} and {:?}", name, other);
        }
    }
}

proptest! {
    // Each case makes up to 80 names: fewer cases, as many names in all.
    #![proptest_config(config(128))]

    #[test]
    fn a_set_of_names_maps_to_as_many_components(
        names in proptest::collection::vec(hostile_name(), 1..40),
        hows in proptest::collection::vec(any::<u8>(), 0..20),
    ) {
        // The names, their neighbours, and some repeats.
        let mut all = names.clone();
        for (i, how) in hows.iter().enumerate() {
            all.push(neighbour(&names[i % names.len()], *how, '_'));
            all.push(names[(i * 7) % names.len()].clone());
        }
        let distinct_inputs: HashSet<&String> = all.iter().collect();
        let distinct_outputs: HashSet<String> = all.iter().map(|n| safe_component(n)).collect();
        prop_assert_eq!(distinct_outputs.len(), distinct_inputs.len());
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// A name that needed cleaning gets `-` and a hash appended. A tenant named exactly like that
    /// result must not land in the same folder (found by this property: `""` and
    /// `tenant-e3b0c442`, `a/b` and `a_b-c14cddc0` used to collide).
    #[test]
    fn a_cleaned_name_does_not_collide_with_its_result(name in hostile_name()) {
        let safe = safe_component(&name);
        if safe != name {
            prop_assert_ne!(safe_component(&safe), safe.clone(), "{:?} and {:?} both map to {:?}", name, safe, safe);
        }
    }
}

/// Names that end like a changed name, in any case, next to the names they would be mistaken for.
fn hashed_looking_name() -> impl Strategy<Value = String> {
    (hostile_name(), "-[0-9a-fA-F]{8}|[0-9a-f]{8}|-[0-9a-f]{7}").prop_map(|(name, end)| {
        let safe = safe_component(&name);
        let stem = safe
            .rsplit_once('-')
            .map_or(safe.as_str(), |(stem, _)| stem);
        format!("{stem}{end}")
    })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn hashed_looking_names_are_safe_and_distinct(a in hashed_looking_name(), b in hostile_name()) {
        let (safe_a, safe_b) = (safe_component(&a), safe_component(&b));
        assert_safe(&a, &safe_a)?;
        if a != b {
            prop_assert_ne!(&safe_a, &safe_b, "{:?} and {:?}", a, b);
        }
        let again = safe_component(&safe_a);
        if safe_a != a {
            prop_assert_ne!(again, safe_a, "{:?}", a);
        }
    }
}

#[test]
fn safe_component_of_a_cleaned_name_is_a_different_name() {
    let first = safe_component("a/b");
    assert_ne!(first, "a/b");
    assert_ne!(safe_component(&first), first, "`a/b` and `{first}` collide");
}

/// Found by `safe_components_are_safe`: `CON.txt` used to map to `CON.txt-09c8cc7e`.
#[test]
fn reserved_stem_with_an_extension_is_not_kept() {
    for name in [
        "con.txt",
        "CON.txt",
        "CON.._",
        "NUL.tar.gz",
        "com1.csv",
        "Lpt9.x",
    ] {
        let safe = safe_component(name);
        assert!(!is_reserved_stem(&safe), "{name:?} -> {safe:?}");
    }
}

/// Two names that clean up to the same `Acme_Corp` get the same 32-bit hash: found by a birthday
/// search over 2^17 such names, which takes a fraction of a second. The job validator refuses
/// the pair as a duplicate and discovery renames the second, but the function itself collides.
#[test]
fn names_with_the_same_cleaned_form_and_short_hash_do_not_collide() {
    let (a, b) = ("Acme//?>?>Corp", "Acme/\\>\\<<Corp");
    assert_ne!(safe_component(a), safe_component(b));
}

/// Relative paths made of the pieces that try to climb out.
fn hostile_relative() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just("/".to_owned()),
        Just("//".to_owned()),
        Just("\\".to_owned()),
        Just("\\..\\".to_owned()),
        Just("../".to_owned()),
        Just("/etc".to_owned()),
        Just("~".to_owned()),
        Just("link".to_owned()),
        Just("file".to_owned()),
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("\0".to_owned()),
        Just("C:".to_owned()),
        Just(" ".to_owned()),
        "\\PC{1,3}".prop_map(|s| s),
    ];
    prop_oneof![
        "\\PC{0,20}",
        proptest::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat()),
    ]
}

fn entries(dir: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// Every path under `dir`, not following symbolic links.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        out.push(path.clone());
        if entry.file_type().unwrap().is_dir() {
            walk(&path, out);
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn ensure_dir_inside_never_writes_outside(relatives in proptest::collection::vec(hostile_relative(), 1..4)) {
        let outer = tempfile::tempdir().unwrap();
        let base = outer.path().join("base");
        let outside = outer.path().join("outside");
        std::fs::create_dir(&base).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(base.join("file"), b"x").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&outside, base.join("link")).unwrap();
        let before = entries(outer.path());

        for relative in &relatives {
            if let Ok(dir) = ensure_dir_inside(&base, relative) {
                prop_assert!(dir.starts_with(&base), "{:?} -> {:?}", relative, dir);
                prop_assert!(dir.is_dir(), "{:?} -> {:?}", relative, dir);
                let real = dir.canonicalize().unwrap();
                prop_assert!(real.starts_with(base.canonicalize().unwrap()), "{:?} -> {:?}", relative, real);
            }
        }

        prop_assert_eq!(entries(outer.path()), before, "{:?}", relatives);
        prop_assert_eq!(entries(&outside).len(), 0, "{:?} wrote through the link", relatives);
        let mut inside = Vec::new();
        walk(&base, &mut inside);
        for path in inside {
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let known = path == base.join("file") || path == base.join("link");
            prop_assert!(known || meta.is_dir(), "{:?} made {:?}", relatives, path);
        }
    }
}
