use super::*;
use crate::content::lines::lines_of;
use crate::report::BillingScope;

const HEADER: &str = "tenant.id,tenant.kind,tenant.name,name,edition,infra.backend_type,usage.absolute.production,usage.absolute.total,usage.absolute.trial,usage.delta.production,usage.delta.total,usage.delta.trial,usage.effective.production,usage.effective.total,usage.effective.trial,sku";

/// What reading a file gives: its lines, and how the read ended (the problem as worded).
type Lines = (Vec<Line>, Result<(), String>);

fn read(format: Format, text: &str, rule: &BillingRule) -> Lines {
    let mut lines = Vec::new();
    let end = lines_of(format, text.as_bytes(), rule, &mut |line| {
        lines.push(line.clone());
        Ok(())
    });
    (lines, end.map(|_| ()).map_err(|e| e.to_string()))
}

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The read of `text`, spilled and filed as the download does.
fn spill(format: Format, text: &str, rule: &BillingRule) {
    let (lines, end) = read(format, text, rule);
    let mut writer = SpillWriter::start(format, rule).expect("a store is installed");
    for line in &lines {
        writer.add(line);
    }
    writer
        .finish(end.as_ref().map(|_| ()).map_err(String::as_str))
        .expect("written whole")
        .keep(&sha256(text));
}

fn replayed(format: Format, text: &str, rule: &BillingRule) -> Option<Lines> {
    let mut lines = Vec::new();
    let end = replay(&sha256(text), format, rule, &mut |line| {
        lines.push(line.clone());
        Ok(())
    })?;
    Some((lines, end.map_err(|e| e.to_string())))
}

fn spill_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir.join(FOLDER))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A store installed in a folder of its own, for one test at a time; dropped in the order a
/// run lets go: the store, its folder, then the turn.
struct Fixture {
    _installed: Installed,
    dir: tempfile::TempDir,
    _one: std::sync::MutexGuard<'static, ()>,
}

impl Fixture {
    fn installed() -> Fixture {
        let one = one_store_at_a_time();
        let dir = tempfile::tempdir().unwrap();
        Fixture {
            _installed: install(dir.path()).unwrap(),
            dir,
            _one: one,
        }
    }
}

#[test]
fn a_replay_gives_the_lines_and_the_end_of_the_read() {
    let fixture = Fixture::installed();
    let dir = &fixture.dir;
    let rule = BillingRule::default();
    let csv = format!(
        "{HEADER}\n\
         p,partner,Partner,pw_base_storage,e,acronis,100,100,0,1,1,0,1,1,0,S1\n\
         p,partner,Partner,pw_base_storage,e,azure,-3.25,0.000000001,1e6,0,0,0,0,0,0,S1\n\
         c,customer,,pw_compute_points,e,,0,0,0,3600,7200.5,3600,0,0,0,S2\n\
         c,customer,,pw_compute_points,e,,0,0,0,3600,7200.5,3600,0,0,0,\n\
         c,customer,,big,e,,1000000000000000000,1000000000000000000,0,0,0,0,0,0,0,S3\n\
         d,folder,Dept,pw_base_storage,,,1,1,0,0,0,0,1,1,0,S4\n\
         d,partner,Dept,pw_base_storage,,,2,2,0,0,0,0,1,1,0,S5\n\
         e1,customer,Zoë,pw_base_storage,,,1,1,0,0,0,0,1,1,0,S4\n\
         e2,customer,Zoé,pw_base_storage,,,1,1,0,0,0,0,1,1,0,S4\n\
         e3,customer,Zoé Müller,pw_base_storage,,,1,1,0,0,0,0,1,1,0,S4\n"
    );
    let json = r#"{"tenants": [
      {"tenant_uuid": "c", "name": "pw_base_storage", "usage_name": "storage", "value": 3, "absolute_value": 3.5, "range_start": "2026-10-01T00:00:00Z", "measurement_unit": "bytes"},
      {"tenant_uuid": "c", "name": "pw_base_storage", "usage_name": "storage", "value": 3, "absolute_value": 3.5, "range_start": "2026-10-02T00:00:00Z", "measurement_unit": "bytes"},
      {"tenant_uuid": "p", "name": "compute_points", "usage_name": "compute_points", "measurement_unit": "seconds", "value": 7200, "absolute_value": 72000}
    ]}"#;
    let broken = format!(
        "{HEADER}\nc,customer,,pw_base_storage,e,,1,1,0,0,0,0,1,1,0,S\nc,customer,,x,e,,one,1,0,0,0,0,1,1,0,S\n"
    );
    let cases = [
        (Format::CsvV2, csv.as_str(), rule.clone()),
        (
            Format::CsvV2,
            csv.as_str(),
            BillingRule {
                scope: BillingScope::Total,
                ..BillingRule::default()
            },
        ),
        (Format::JsonV2, json, rule.clone()),
        (Format::CsvV2, broken.as_str(), rule.clone()),
        (Format::CsvV2, "Col A\n1\n", rule.clone()),
        (
            Format::JsonV2,
            "<html><title>Sign in</title></html>",
            rule.clone(),
        ),
    ];
    for (format, text, rule) in &cases {
        let original = read(*format, text, rule);
        spill(*format, text, rule);
        assert_eq!(
            replayed(*format, text, rule).as_ref(),
            Some(&original),
            "{text}"
        );
    }
    // The cases cover what the encoding must carry.
    let (lines, _) = read(Format::CsvV2, &csv, &BillingRule::default());
    assert!(lines.iter().any(|l| !l.conflicts.is_empty()));
    assert!(lines.iter().any(|l| l.rows_without_sku > 0));
    assert!(read(Format::CsvV2, &broken, &rule).1.is_err());
    // Each spill is replayed once, then gone: a second billing reads the file.
    assert_eq!(replayed(Format::CsvV2, &csv, &rule), None);
    assert_eq!(spill_files(dir.path()), Vec::<String>::new());
}

#[test]
fn a_spill_is_found_only_by_its_bytes_format_and_rule() {
    let _fixture = Fixture::installed();
    let rule = BillingRule::default();
    let text = format!("{HEADER}\nc,customer,,pw_base_storage,e,,1,1,0,0,0,0,1,1,0,S\n");
    spill(Format::CsvV2, &text, &rule);
    let other_rule = BillingRule {
        scope: BillingScope::Production,
        ..BillingRule::default()
    };
    assert_eq!(replayed(Format::CsvV2, &text, &other_rule), None);
    assert_eq!(replayed(Format::JsonV2, &text, &rule), None);
    assert_eq!(replayed(Format::CsvV2, &format!("{text}\n"), &rule), None);
    let mut never = |_: &Line| -> io::Result<()> { panic!("no line from a bad checksum") };
    for bad in ["", "../../etc/passwd", &"g".repeat(64), &"a".repeat(63)] {
        assert!(replay(bad, Format::CsvV2, &rule, &mut never).is_none());
    }
    assert!(replayed(Format::CsvV2, &text, &rule).is_some());
}

#[test]
fn a_spill_cut_short_or_never_kept_is_not_replayed() {
    let fixture = Fixture::installed();
    let dir = &fixture.dir;
    let rule = BillingRule::default();
    let mut text = format!("{HEADER}\n");
    // Values that change line to line, as the encoding keeps only what changed.
    for i in 0..30_000 {
        let v = i % 1000;
        text.push_str(&format!(
            "c{i},customer,,pw_base_storage,e,,{v},{v},0,0,0,0,1,1,0,S\n"
        ));
    }
    // Every unnamed slot taken, so the large spill is named (and could be cut short).
    let store = current().unwrap();
    let taken: Vec<Slot> = std::iter::from_fn(|| Slot::take(&store.slots)).collect();
    assert_eq!(taken.len(), UNNAMED_MAX);
    spill(Format::CsvV2, &text, &rule);
    drop(taken);
    let name = spill_files(dir.path()).remove(0);
    let path = dir.path().join(FOLDER).join(&name);
    let len = fs::metadata(&path).unwrap().len();
    // Longer than one block, so a replay refills.
    assert!(len > BLOCK as u64, "{len}");
    let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 1).unwrap();
    assert_eq!(replayed(Format::CsvV2, &text, &rule), None);
    // A spill that was written but never filed under a checksum leaves nothing behind.
    let mut writer = SpillWriter::start(Format::CsvV2, &rule).unwrap();
    writer.add(&Line::default());
    drop(writer.finish(Ok(())));
    assert_eq!(spill_files(dir.path()), Vec::<String>::new());
}

/// A spill changed after it was written (a flipped byte, a record length made huge, another
/// file's spill linked in its place) is never replayed: billing.csv reads the report file,
/// whose bytes the run sealed.
#[test]
fn a_spill_changed_on_disk_is_not_replayed() {
    let fixture = Fixture::installed();
    let dir = &fixture.dir;
    let rule = BillingRule::default();
    let text = format!("{HEADER}\nc,customer,,pw_base_storage,e,,1,1,0,0,0,0,1,1,0,S\n");
    let spill_path = || {
        dir.path()
            .join(FOLDER)
            .join(spill_files(dir.path()).remove(0))
    };
    for change in [
        // The line's record claims more bytes than it has.
        &(|bytes: &mut Vec<u8>| bytes[1] = 0x7f) as &dyn Fn(&mut Vec<u8>),
        // A length no line can have.
        &|bytes: &mut Vec<u8>| bytes[1..6].copy_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x7f]),
        // One character of a text.
        &|bytes: &mut Vec<u8>| {
            let at = bytes.iter().position(|b| *b == b's').unwrap();
            bytes[at] = b'X';
        },
    ] {
        spill(Format::CsvV2, &text, &rule);
        let path = spill_path();
        let mut bytes = fs::read(&path).unwrap();
        change(&mut bytes);
        fs::write(&path, &bytes).unwrap();
        assert_eq!(replayed(Format::CsvV2, &text, &rule), None);
    }
    // Another file's spill linked in its place.
    #[cfg(unix)]
    {
        let other = format!("{HEADER}\nd,customer,,pw_base_storage,e,,9,9,0,0,0,0,9,9,0,S\n");
        spill(Format::CsvV2, &text, &rule);
        let path = spill_path();
        spill(Format::CsvV2, &other, &rule);
        let other_path = spill_files(dir.path())
            .into_iter()
            .map(|name| dir.path().join(FOLDER).join(name))
            .find(|p| *p != path)
            .unwrap();
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&other_path, &path).unwrap();
        assert_eq!(replayed(Format::CsvV2, &text, &rule), None);
    }
}

#[test]
fn the_store_lives_while_a_guard_does_and_starts_empty() {
    let _one = one_store_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let rule = BillingRule::default();
    assert!(SpillWriter::start(Format::CsvV2, &rule).is_none(), "off");
    // A killed run's folder is emptied.
    fs::create_dir(dir.path().join(FOLDER)).unwrap();
    fs::write(dir.path().join(FOLDER).join("stale"), "x").unwrap();
    let first = install(dir.path()).unwrap();
    assert_eq!(spill_files(dir.path()), Vec::<String>::new());
    let second = install(dir.path()).unwrap();
    drop(first);
    assert!(
        dir.path().join(FOLDER).is_dir(),
        "shared while one guard is left"
    );
    let writer = SpillWriter::start(Format::CsvV2, &rule).expect("on");
    drop(second);
    assert!(
        dir.path().join(FOLDER).is_dir(),
        "kept for a spill being written"
    );
    drop(writer);
    assert!(!dir.path().join(FOLDER).exists());
    assert!(SpillWriter::start(Format::CsvV2, &rule).is_none());
}

/// A spill larger than a block has no name while a slot is free: nothing is left in the
/// folder for a hand to change, it replays the lines a read gives, and its slot is free again
/// once replayed. Small spills, and large ones past the slots, are named files.
#[test]
fn a_large_spill_is_unnamed_while_slots_last() {
    let fixture = Fixture::installed();
    let dir = &fixture.dir;
    let store = current().unwrap();
    let rule = BillingRule::default();
    let large = |n: usize| {
        let mut text = format!("{HEADER}\n");
        for i in 0..30_000 {
            let v = i % 1000;
            text.push_str(&format!(
                "c{n}-{i},customer,,pw_base_storage,e,,{v},{v},0,0,0,0,1,1,0,S\n"
            ));
        }
        text
    };
    let small = format!("{HEADER}\nc,customer,,pw_base_storage,e,,1,1,0,0,0,0,1,1,0,S\n");
    spill(Format::CsvV2, &large(0), &rule);
    assert_eq!(spill_files(dir.path()), Vec::<String>::new());
    assert_eq!(store.slots.load(Ordering::Acquire), 1);
    spill(Format::CsvV2, &small, &rule);
    assert_eq!(spill_files(dir.path()).len(), 1);
    assert_eq!(
        replayed(Format::CsvV2, &large(0), &rule),
        Some(read(Format::CsvV2, &large(0), &rule))
    );
    assert_eq!(store.slots.load(Ordering::Acquire), 0);
    // Once replayed, it is gone: the file would be read again.
    assert_eq!(replayed(Format::CsvV2, &large(0), &rule), None);
    // Past the slots, large spills are named, and replay all the same.
    let taken: Vec<Slot> = (1..UNNAMED_MAX)
        .map_while(|_| Slot::take(&store.slots))
        .collect();
    for n in 1..=3 {
        spill(Format::CsvV2, &large(n), &rule);
    }
    assert_eq!(store.slots.load(Ordering::Acquire), UNNAMED_MAX);
    assert_eq!(spill_files(dir.path()).len(), 1 + 2);
    for n in 1..=3 {
        assert_eq!(
            replayed(Format::CsvV2, &large(n), &rule),
            Some(read(Format::CsvV2, &large(n), &rule)),
            "{n}"
        );
    }
    assert_eq!(spill_files(dir.path()).len(), 1);
    drop(taken);
    assert_eq!(store.slots.load(Ordering::Acquire), 0);
}

mod any_lines {
    use super::*;
    use proptest::prelude::*;

    /// A line from small choices, so that neighbours often share texts and numbers (what the
    /// encoding leaves out) and often do not.
    fn line() -> impl Strategy<Value = Line> {
        let amount = prop_oneof![
            Just(None),
            (-3i128..4).prop_map(|n| Some(Amount::from_nanos(n * 1_000_000_000))),
            any::<i64>().prop_map(|n| Some(Amount::from_nanos(i128::from(n)))),
        ];
        (
            prop::sample::select(vec!["c1", "c2", "c10", "é"]),
            prop::sample::select(vec!["", "customer", "partner"]),
            0u64..3,
            0u64..2,
            prop::option::of(0usize..Measure::ALL.len()),
            prop::collection::vec(amount, Measure::ALL.len()),
            prop::collection::vec("[a-z ]{0,3}", 0..2),
        )
            .prop_map(
                |(tenant, kind, rows, without, measure, amounts, conflicts)| {
                    let mut line = Line {
                        tenant_id: tenant.to_owned(),
                        tenant_kind: kind.to_owned(),
                        offering_item: "pw_base_storage".to_owned(),
                        rows,
                        rows_without_sku: without,
                        billable_measure: measure.map_or("", |m| Measure::ALL[m].name()),
                        billable_raw: amounts[0].unwrap_or(Amount::ZERO),
                        conflicts,
                        ..Line::default()
                    };
                    for (m, amount) in Measure::ALL.into_iter().zip(amounts) {
                        line.measures.set(m, amount);
                    }
                    line
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Whatever a line keeps of the last one, a replay gives every line as written.
        #[test]
        fn any_lines_replay_as_written(lines in prop::collection::vec(line(), 0..40)) {
            let _fixture = Fixture::installed();
            let rule = BillingRule::default();
            let mut writer = SpillWriter::start(Format::CsvV2, &rule).unwrap();
            for line in &lines {
                writer.add(line);
            }
            let sha = "ab".repeat(32);
            writer.finish(Ok(())).unwrap().keep(&sha);
            let mut replayed = Vec::new();
            let end = replay(&sha, Format::CsvV2, &rule, &mut |line| {
                replayed.push(line.clone());
                Ok(())
            });
            prop_assert!(matches!(end, Some(Ok(()))));
            prop_assert_eq!(replayed, lines);
        }
    }
}

/// One file's spill copied over another's (not linked: a regular file, sealed by this very
/// process) is not replayed either: the seal binds the bytes to the name they were filed under.
#[test]
fn a_spill_copied_under_another_files_name_is_not_replayed() {
    let fixture = Fixture::installed();
    let dir = &fixture.dir;
    let rule = BillingRule::default();
    let text = format!("{HEADER}\nc,customer,,pw_base_storage,e,,1,1,0,0,0,0,1,1,0,S\n");
    let other = format!("{HEADER}\nd,customer,,pw_base_storage,e,,9,9,0,0,0,0,9,9,0,S\n");
    spill(Format::CsvV2, &text, &rule);
    spill(Format::CsvV2, &other, &rule);
    let name = |of: &str| name(&sha256(of), Format::CsvV2, &rule).unwrap();
    let folder = dir.path().join(FOLDER);
    fs::copy(folder.join(name(&other)), folder.join(name(&text))).unwrap();
    assert_eq!(replayed(Format::CsvV2, &text, &rule), None);
    assert_eq!(
        replayed(Format::CsvV2, &other, &rule),
        Some(read(Format::CsvV2, &other, &rule)),
        "the other spill itself still holds"
    );
}

/// Spills kept for billing.csv hold nothing in memory each: a run of many reports keeps their
/// seals in the files (the `scale` case's flat memory; a map of seals grew by ~50 bytes a
/// report and doubled its table in the second half of a 10 000-report run).
#[test]
fn kept_spills_hold_no_memory_each() {
    let fixture = Fixture::installed();
    let dir = &fixture.dir;
    let rule = BillingRule::default();
    let text =
        |i: usize| format!("{HEADER}\nt{i},customer,,pw_base_storage,e,,1,1,0,0,0,0,1,1,0,S\n");
    spill(Format::CsvV2, &text(0), &rule);
    let ((), few) =
        crate::heap::peak_of(|| (1..=100).for_each(|i| spill(Format::CsvV2, &text(i), &rule)));
    let ((), many) =
        crate::heap::peak_of(|| (101..=1100).for_each(|i| spill(Format::CsvV2, &text(i), &rule)));
    assert_eq!(spill_files(dir.path()).len(), 1101);
    assert!(
        many <= few + 1000 * 8,
        "100 spills kept: {few} bytes at the peak; 1 000 more: {many}"
    );
    assert_eq!(
        replayed(Format::CsvV2, &text(7), &rule),
        Some(read(Format::CsvV2, &text(7), &rule))
    );
}

/// The path of the spill of `text`.
fn spill_path(dir: &Path, text: &str, rule: &BillingRule) -> PathBuf {
    dir.join(FOLDER)
        .join(name(&sha256(text), Format::CsvV2, rule).unwrap())
}

/// Runs `replay` of `text` on a thread of its own: `None` if it did not end within 5 s.
fn replayed_soon(text: &str, rule: &BillingRule) -> Option<Option<Lines>> {
    let (text, rule) = (text.to_owned(), rule.clone());
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(replayed(Format::CsvV2, &text, &rule));
    });
    result.recv_timeout(std::time::Duration::from_secs(5)).ok()
}

/// Attack: the scratch file of a spill (`.pending-…`) is swapped, before it is filed, for a
/// FIFO or a link to another file. Filing it neither hangs nor writes to anything but the
/// spill's own file; and what was swapped in is not replayed.
#[cfg(unix)]
#[test]
fn a_spill_swapped_before_it_is_filed_is_neither_followed_nor_replayed() {
    let fixture = Fixture::installed();
    let dir = &fixture.dir;
    let rule = BillingRule::default();
    let text = format!("{HEADER}\nc,customer,,pw_base_storage,e,,1,1,0,0,0,0,1,1,0,S\n");
    let victim = dir.path().join("victim");
    fs::write(&victim, b"untouched").unwrap();
    for fifo in [true, false] {
        let (lines, end) = read(Format::CsvV2, &text, &rule);
        let mut writer = SpillWriter::start(Format::CsvV2, &rule).unwrap();
        for line in &lines {
            writer.add(line);
        }
        let spilled = writer
            .finish(end.as_ref().map(|_| ()).map_err(String::as_str))
            .unwrap();
        let pending = spill_files(dir.path())
            .into_iter()
            .find(|name| name.starts_with(".pending-"))
            .unwrap();
        let pending = dir.path().join(FOLDER).join(pending);
        fs::remove_file(&pending).unwrap();
        if fifo {
            let made = std::process::Command::new("mkfifo").arg(&pending).status();
            assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        } else {
            std::os::unix::fs::symlink(&victim, &pending).unwrap();
        }
        let (done, filed) = std::sync::mpsc::channel();
        let sha = sha256(&text);
        std::thread::spawn(move || {
            spilled.keep(&sha);
            let _ = done.send(());
        });
        assert!(
            filed
                .recv_timeout(std::time::Duration::from_secs(5))
                .is_ok(),
            "filing a spill swapped for a FIFO hangs"
        );
        assert_eq!(
            fs::read(&victim).unwrap(),
            b"untouched",
            "written through a link"
        );
        assert_eq!(replayed_soon(&text, &rule), Some(None));
        let _ = fs::remove_file(spill_path(dir.path(), &text, &rule));
    }
}

/// Attack: a spill grown huge (a sparse file costs its maker nothing) is turned down without
/// reading it, rather than read to its end for a seal that cannot hold.
#[test]
fn a_spill_grown_huge_is_turned_down_at_once() {
    let fixture = Fixture::installed();
    let dir = &fixture.dir;
    let rule = BillingRule::default();
    let text = format!("{HEADER}\nc,customer,,pw_base_storage,e,,1,1,0,0,0,0,1,1,0,S\n");
    spill(Format::CsvV2, &text, &rule);
    let path = spill_path(dir.path(), &text, &rule);
    let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(1 << 40).unwrap();
    drop(file);
    assert_eq!(
        replayed_soon(&text, &rule),
        Some(None),
        "a 1 TiB spill is read for its seal"
    );
}

/// A `csv_v2_0` text of `rows` rows whose values change line to line (so that each line's
/// record is some bytes long), the row `changed` with a value one higher.
fn varied(rows: usize, changed: Option<usize>) -> String {
    let mut text = format!("{HEADER}\n");
    for i in 0..rows {
        let a = (i * 7919) % 900_007 + 100_000 + usize::from(changed == Some(i));
        let b = (i * 104_729) % 900_011 + 100_000;
        text.push_str(&format!(
            "c{i},customer,,pw_base_storage,e,,{a}.5,{b}.25,0,0,0,0,1,1,0,S\n"
        ));
    }
    text
}

/// Attack: another process rewrites part of a named spill after its seal was checked, while
/// it is replayed (here: as its first line is handed on). What billing.csv gets is what was
/// sealed — never the bytes written meanwhile.
#[test]
fn a_spill_changed_while_it_is_replayed_gives_the_lines_sealed() {
    let fixture = Fixture::installed();
    let dir = &fixture.dir;
    let store = current().unwrap();
    let rule = BillingRule::default();
    let rows = 60_000;
    let text = varied(rows, None);
    let other = varied(rows, Some(rows - 100));
    // Every unnamed slot taken: large spills are named.
    let taken: Vec<Slot> = std::iter::from_fn(|| Slot::take(&store.slots)).collect();
    spill(Format::CsvV2, &text, &rule);
    spill(Format::CsvV2, &other, &rule);
    drop(taken);
    let (path, other_path) = (
        spill_path(dir.path(), &text, &rule),
        spill_path(dir.path(), &other, &rule),
    );
    let (ours, theirs) = (fs::read(&path).unwrap(), fs::read(&other_path).unwrap());
    let differ = ours.iter().zip(&theirs).position(|(a, b)| a != b).unwrap();
    // Past what a replay has read when it hands on its first line.
    assert!(differ > 3 * BLOCK, "{differ} of {}", ours.len());
    let mut changed = false;
    let mut lines = Vec::new();
    let end = replay(&sha256(&text), Format::CsvV2, &rule, &mut |line| {
        if !changed {
            changed = true;
            let mut file = fs::OpenOptions::new().write(true).open(&path).unwrap();
            file.seek(SeekFrom::Start(differ as u64)).unwrap();
            io::Write::write_all(&mut file, &theirs[differ..theirs.len() - 100]).unwrap();
        }
        lines.push(line.clone());
        Ok(())
    });
    assert!(changed);
    let replayed = end.map(|end| (lines, end.map_err(|e| e.to_string())));
    if let Some(replayed) = replayed {
        assert!(
            replayed == read(Format::CsvV2, &text, &rule),
            "billing.csv would hold lines that were never sealed"
        );
    }
}

/// Attack: things that are not a sealed spill at a spill's name — a FIFO, a folder, nothing
/// but a seal's length, bytes appended, an empty file — are never replayed, and never hang.
#[test]
fn what_is_not_a_spill_is_not_replayed() {
    let fixture = Fixture::installed();
    let dir = &fixture.dir;
    let rule = BillingRule::default();
    let text = format!("{HEADER}\nc,customer,,pw_base_storage,e,,1,1,0,0,0,0,1,1,0,S\n");
    let path = spill_path(dir.path(), &text, &rule);
    type Change = dyn Fn(&Path);
    let changes: [&Change; 6] = [
        &|path| {
            fs::remove_file(path).unwrap();
            let made = std::process::Command::new("mkfifo").arg(path).status();
            assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        },
        &|path| {
            fs::remove_file(path).unwrap();
            fs::create_dir(path).unwrap();
        },
        &|path| fs::write(path, [0u8; 64]).unwrap(),
        &|path| fs::write(path, b"").unwrap(),
        &|path| {
            let mut file = fs::OpenOptions::new().append(true).open(path).unwrap();
            io::Write::write_all(&mut file, b"ARLINES2").unwrap();
        },
        &|path| {
            let bytes = fs::read(path).unwrap();
            fs::write(path, &bytes[..bytes.len() - 1]).unwrap();
        },
    ];
    for (i, change) in changes.iter().enumerate() {
        spill(Format::CsvV2, &text, &rule);
        change(&path);
        assert_eq!(replayed_soon(&text, &rule), Some(None), "change {i}");
        let _ = fs::remove_file(&path);
        let _ = fs::remove_dir(&path);
    }
}
