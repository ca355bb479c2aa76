//! Runs every cargo-fuzz target of `fuzz/` for a bounded time (10 s each,
//! one per core at a time; `OSPREY_FUZZ_SECONDS` to change) from its seed corpus, and
//! fails on any crash, leak of the RSS limit or timeout libFuzzer reports.
//! cargo-fuzz must be installed (`.ci/run` installs it): a missing
//! cargo-fuzz fails the test rather than skipping it.
//!
//! The targets are built once (dev profile), into `<target dir>/fuzz`, without a
//! sanitizer (the code is safe Rust: coverage-guided fuzzing with overflow
//! checks and debug assertions is what finds its panics) and with
//! `RUSTC_BOOTSTRAP=1`, so a stable toolchain builds them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `<target dir>/fuzz`, beside the tests' own build (separate, so that
/// the instrumented build neither waits on nor disturbs it).
fn fuzz_target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target dir")
        .join("fuzz")
}

fn cargo_fuzz(args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.arg("fuzz")
        .args(args)
        .current_dir(repo())
        .env("RUSTC_BOOTSTRAP", "1")
        // The outer `cargo test`'s settings are not the fuzz build's.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    cmd
}

fn run(mut cmd: Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run cargo ({e})"));
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\n{}\n{}",
            out.status,
            tail(&out.stdout),
            tail(&out.stderr)
        );
    }
    out
}

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// Flags shared by `build` and `run`, so `run` finds `build`'s binaries.
fn build_flags(target_dir: &Path) -> Vec<String> {
    vec![
        "--sanitizer=none".into(),
        "--debug-assertions".into(),
        // The dev profile: the build is most of this test's time on two
        // cores, and a few thousand runs a second are plenty for a
        // bounded smoke run (long runs use release: docs/fuzzing.md).
        "--dev".into(),
        "--target-dir".into(),
        target_dir.display().to_string(),
    ]
}

#[test]
fn every_fuzz_target_runs_clean_for_a_bounded_time() {
    let version = cargo_fuzz(&["--version"]).output();
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "cargo-fuzz is not installed (`cargo install cargo-fuzz --locked`, as .ci/run does): {version:?}"
    );
    let seconds: u64 = std::env::var("OSPREY_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let target_dir = fuzz_target_dir();
    let flags = build_flags(&target_dir);
    let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();

    let list = run(cargo_fuzz(&["list"]), "cargo fuzz list");
    let targets: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    assert!(targets.len() >= 12, "fuzz targets: {targets:?}");

    let started = Instant::now();
    let mut build = vec!["build"];
    build.extend(&flag_refs);
    run(cargo_fuzz(&build), "cargo fuzz build");
    eprintln!("fuzz build: {:.0?}", started.elapsed());

    // libFuzzer runs one input at a time: run as many targets at once as
    // there are cores, so the bounded time costs the suite a fraction of
    // targets × seconds.
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let scratch = tempfile::tempdir().unwrap();
    let queue = std::sync::Mutex::new(targets.iter());
    let report = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..parallel {
            s.spawn(|| {
                loop {
                    // The guard is dropped at the end of this statement,
                    // not held while the target runs.
                    let Some(target) = queue.lock().unwrap().next() else {
                        break;
                    };
                    let line = fuzz_one(target, &flags, scratch.path(), seconds);
                    report.lock().unwrap().push(line);
                }
            });
        }
    });
    let mut report = report.into_inner().unwrap();
    report.sort();
    eprintln!("{}", report.join("\n"));
}

/// Runs `target` for `seconds` from its seed corpus; panics on any finding.
/// Returns a line for the report.
fn fuzz_one(target: &str, flags: &[String], scratch: &Path, seconds: u64) -> String {
    let seeds = repo().join("fuzz/corpus").join(target);
    assert!(
        std::fs::read_dir(&seeds).is_ok_and(|mut d| d.next().is_some()),
        "{target} has no seed corpus in {}",
        seeds.display()
    );
    // New inputs go to a scratch corpus; the committed seeds stay as they
    // are.
    let corpus = scratch.join(target);
    std::fs::create_dir_all(&corpus).unwrap();
    let artifacts = repo().join("fuzz/artifacts");
    let prefix = format!("{}/{target}/", artifacts.display());
    std::fs::create_dir_all(artifacts.join(target)).unwrap();
    let mut args = vec!["run".to_string()];
    args.extend(flags.iter().cloned());
    args.extend([
        target.to_string(),
        corpus.display().to_string(),
        seeds.display().to_string(),
        "--".into(),
        format!("-max_total_time={seconds}"),
        "-rss_limit_mb=2048".into(),
        "-timeout=20".into(),
        "-max_len=65536".into(),
        format!("-artifact_prefix={prefix}"),
        "-print_final_stats=1".into(),
    ]);
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let t = Instant::now();
    let out = cargo_fuzz(&arg_refs)
        .output()
        .unwrap_or_else(|e| panic!("{target}: cannot run cargo fuzz ({e})"));
    let elapsed = t.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "fuzz target {target} failed ({}); the crashing input is under {prefix}:\n{}",
        out.status,
        tail(&out.stderr)
    );
    let execs = stat(&stderr, "stat::number_of_executed_units:").unwrap_or(0);
    assert!(execs > 0, "{target} ran no input:\n{}", tail(&out.stderr));
    let secs = elapsed.max(Duration::from_millis(1)).as_secs_f64();
    format!(
        "{target}: {execs} execs in {secs:.1}s ({:.0}/s)",
        execs as f64 / secs.min(seconds as f64).max(0.001)
    )
}

/// A `-print_final_stats=1` figure.
fn stat(stderr: &str, name: &str) -> Option<u64> {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
}
