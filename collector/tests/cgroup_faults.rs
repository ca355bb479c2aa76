//! Bad input never panics: malformed, truncated, binary, missing and
//! unreadable files and removed cgroups produce typed errors.

use std::path::Path;

use osprey_collector::cgroup::{CgroupReader, ParseError, ReadError};
use osprey_collector::fixture::{CgroupValues, FixtureTree, paths};
use osprey_collector::layout::CgroupLayout;

fn v1_tree() -> (FixtureTree, String) {
    let tree = FixtureTree::v1().unwrap();
    let path = paths::docker_cgroupfs(&paths::container_id(1));
    tree.add_cgroup(&path, &CgroupValues::sample(1)).unwrap();
    (tree, path)
}

fn v2_tree() -> (FixtureTree, String) {
    let tree = FixtureTree::v2().unwrap();
    let path = paths::docker_systemd(&paths::container_id(1));
    tree.add_cgroup(&path, &CgroupValues::sample(1)).unwrap();
    (tree, path)
}

fn assert_parse_error(err: ReadError, file: &str) -> ParseError {
    match err {
        ReadError::Parse { path, source } => {
            assert!(
                path.ends_with(file),
                "error names {path:?}, expected {file}"
            );
            source
        }
        other => panic!("expected a parse error for {file}, got {other:?}"),
    }
}

fn assert_io_error(err: ReadError, file: &str) -> std::io::Error {
    match err {
        ReadError::Io { path, source } => {
            assert!(
                path.ends_with(file),
                "error names {path:?}, expected {file}"
            );
            source
        }
        other => panic!("expected an I/O error for {file}, got {other:?}"),
    }
}

#[test]
fn malformed_lines_are_parse_errors() {
    let cases: [(&str, &str, &str); 7] = [
        ("memory", "memory.stat", "cache 1\nrss\n"),
        ("memory", "memory.stat", "cache 1\nrss 12abc\n"),
        ("cpuacct", "cpuacct.stat", "user 1 2\nsystem 3\n"),
        ("cpu", "cpu.stat", "nr_periods -4\n"),
        ("memory", "memory.oom_control", "oom_kill x\n"),
        (
            "blkio",
            "blkio.throttle.io_serviced_recursive",
            "254:0 Read\nTotal 0\n",
        ),
        ("pids", "pids.max", "unlimited\n"),
    ];
    for (controller, file, text) in cases {
        let (tree, path) = v1_tree();
        let mut reader = CgroupReader::open(tree.layout(), &path).unwrap();
        tree.write_file(controller, &path, file, text).unwrap();
        // `pids.max` is a limit, read with the spec rather than every tick.
        let err = if file == "pids.max" {
            reader.read_spec().unwrap_err()
        } else {
            reader.read_stats(0).unwrap_err()
        };
        let message = err.to_string();
        let source = assert_parse_error(err, file);
        assert!(
            matches!(
                source,
                ParseError::MalformedLine { .. } | ParseError::InvalidNumber { .. }
            ),
            "{file}: {source:?}"
        );
        assert!(message.contains(file), "{message}");
    }
    let cases: [(&str, &str); 6] = [
        ("io.stat", "254:0 rbytes=1 wbytes\n"),
        ("io.stat", "254 rbytes=1\n"),
        ("cpu.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00\n"),
        ("memory.pressure", "some avg10=x total=1\n"),
        ("memory.events", "max 1 2\n"),
        ("memory.peak", "12 34\n"),
    ];
    for (file, text) in cases {
        let (tree, path) = v2_tree();
        let mut reader = CgroupReader::open(tree.layout(), &path).unwrap();
        tree.write_file("", &path, file, text).unwrap();
        assert_parse_error(reader.read_stats(0).unwrap_err(), file);
    }
}

#[test]
fn truncated_and_binary_files_are_parse_errors() {
    let (tree, path) = v1_tree();
    let mut reader = CgroupReader::open(tree.layout(), &path).unwrap();
    tree.write_file("cpuacct", &path, "cpuacct.usage", "")
        .unwrap();
    assert_eq!(
        assert_parse_error(reader.read_stats(0).unwrap_err(), "cpuacct.usage"),
        ParseError::Empty
    );
    // Cut in the middle of a line: `rss` lost its value.
    tree.set_values(&path, &CgroupValues::sample(1)).unwrap();
    tree.write_file("memory", &path, "memory.stat", "cache 123\nrss")
        .unwrap();
    assert_parse_error(reader.read_stats(0).unwrap_err(), "memory.stat");

    let (tree, path) = v2_tree();
    let mut reader = CgroupReader::open(tree.layout(), &path).unwrap();
    std::fs::write(
        tree.file_path("", &path, "memory.current"),
        [0xff, 0xfe, 0x00, 0x31],
    )
    .unwrap();
    assert_eq!(
        assert_parse_error(reader.read_stats(0).unwrap_err(), "memory.current"),
        ParseError::NotText
    );
    // After the fault is repaired the same reader works again.
    tree.set_values(&path, &CgroupValues::sample(1)).unwrap();
    assert_eq!(
        reader.read_stats(0).unwrap().memory.usage,
        CgroupValues::sample(1).memory_usage
    );
}

#[test]
fn unreadable_files_are_io_errors() {
    // Root ignores permission bits; a directory in place of the file
    // opens fine and fails to read with EISDIR.
    let (tree, path) = v1_tree();
    tree.replace_file_with_dir("memory", &path, "memory.stat")
        .unwrap();
    let mut reader = CgroupReader::open(tree.layout(), &path).unwrap();
    let source = assert_io_error(reader.read_stats(0).unwrap_err(), "memory.stat");
    assert_eq!(source.raw_os_error(), Some(libc::EISDIR));

    let (tree, path) = v2_tree();
    tree.replace_file_with_dir("", &path, "io.stat").unwrap();
    let mut reader = CgroupReader::open(tree.layout(), &path).unwrap();
    assert_io_error(reader.read_stats(0).unwrap_err(), "io.stat");

    // Limit files too.
    tree.replace_file_with_dir("", &path, "cpu.max").unwrap();
    assert_io_error(reader.read_spec().unwrap_err(), "cpu.max");
}

#[test]
fn malformed_limit_files_are_parse_errors() {
    let (tree, path) = v2_tree();
    let mut reader = CgroupReader::open(tree.layout(), &path).unwrap();
    tree.write_file("", &path, "cpu.max", "50000\n").unwrap();
    assert_parse_error(reader.read_spec().unwrap_err(), "cpu.max");
    tree.write_file("", &path, "cpu.max", "max 100000\n")
        .unwrap();
    tree.write_file("", &path, "memory.max", "lots\n").unwrap();
    assert_parse_error(reader.read_spec().unwrap_err(), "memory.max");

    let (tree, path) = v1_tree();
    let mut reader = CgroupReader::open(tree.layout(), &path).unwrap();
    tree.write_file("cpu", &path, "cpu.cfs_quota_us", "-\n")
        .unwrap();
    assert_parse_error(reader.read_spec().unwrap_err(), "cpu.cfs_quota_us");
}

#[test]
fn missing_optional_files_are_skipped_once() {
    let (tree, path) = v2_tree();
    for file in ["memory.peak", "memory.events", "io.pressure", "pids.max"] {
        tree.remove_file("", &path, file).unwrap();
    }
    let mut reader = CgroupReader::open(tree.layout(), &path).unwrap();
    assert!(
        !reader
            .files()
            .iter()
            .any(|f| f.ends_with("memory.peak") || f.ends_with("memory.events"))
    );
    // Created later: not picked up, the reader never retries.
    tree.set_values(&path, &CgroupValues::sample(1)).unwrap();
    let stats = reader.read_stats(0).unwrap();
    assert_eq!(stats.memory.max_usage, None);
    assert_eq!(stats.memory.failcnt, 0);
    assert_eq!(stats.pids.limit, None);
    assert_eq!(
        stats.pids.current,
        Some(CgroupValues::sample(1).pids_current)
    );
    assert_eq!(reader.files().len(), 8);
}

#[test]
fn missing_required_file_in_an_existing_cgroup_is_an_io_error() {
    let (tree, path) = v1_tree();
    tree.remove_file("cpuacct", &path, "cpuacct.usage").unwrap();
    let err = CgroupReader::open(tree.layout(), &path).unwrap_err();
    let source = assert_io_error(err, "cpuacct.usage");
    assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn removed_cgroup_is_vanished_at_open() {
    for (tree, path) in [v1_tree(), v2_tree()] {
        tree.remove_cgroup(&path).unwrap();
        let err = CgroupReader::open(tree.layout(), &path).unwrap_err();
        assert!(err.is_vanished(), "{err:?}");
        assert!(err.to_string().contains(&path));
    }
}

#[test]
fn cgroup_removed_between_open_and_spec_read_is_vanished() {
    for (tree, path) in [v1_tree(), v2_tree()] {
        let mut reader = CgroupReader::open(tree.layout(), &path).unwrap();
        tree.remove_cgroup(&path).unwrap();
        let err = reader.read_spec().unwrap_err();
        assert!(err.is_vanished(), "{err:?}");
    }
}

#[test]
fn unmounted_hierarchy_is_reported() {
    let err = CgroupReader::open(&CgroupLayout::default(), "/").unwrap_err();
    assert!(matches!(err, ReadError::NotMounted { .. }), "{err:?}");
    let mut layout = CgroupLayout::default();
    layout.v1.insert(
        "memory".into(),
        Path::new("/nonexistent-osprey-mount").to_path_buf(),
    );
    let err = CgroupReader::open(&layout, "/a").unwrap_err();
    assert!(err.is_vanished(), "{err:?}");
}

/// The limit files the benchmark's floor reads (`v1::SPEC_FILES`,
/// `v2::SPEC_FILES`, listed apart from `read_spec`) are the ones
/// `read_spec` reads: each, made unparsable, fails it by name, and the
/// reader lists every one of them.
#[test]
fn the_listed_limit_files_are_those_read_spec_reads() {
    use osprey_collector::cgroup::{v1, v2};
    let v1_files = ["cpu", "memory", "pids"]
        .into_iter()
        .zip(v1::SPEC_FILES)
        .flat_map(|(controller, names)| names.iter().map(move |name| (controller, *name)));
    let v2_files = v2::SPEC_FILES.iter().map(|name| ("", *name));
    for (controller, file) in v1_files.chain(v2_files) {
        let (tree, path) = if controller.is_empty() {
            v2_tree()
        } else {
            v1_tree()
        };
        let mut reader = CgroupReader::open(tree.layout(), &path).unwrap();
        let listed = tree.file_path(controller, &path, file);
        assert!(
            reader.spec_files().contains(&listed),
            "{} in {:?}",
            listed.display(),
            reader.spec_files()
        );
        reader.read_spec().unwrap();
        tree.write_file(controller, &path, file, "garbage\n")
            .unwrap();
        assert_parse_error(reader.read_spec().unwrap_err(), file);
    }
}
