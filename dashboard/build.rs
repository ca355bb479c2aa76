//! Embeds the front-end in the crate: installs the npm dependencies
//! (uPlot) with `npm ci` from the committed lockfile when
//! `web/node_modules` is missing or older than the lockfile, then writes
//! `$OUT_DIR/assets.rs`, a table of every file served under `/ui/`
//! (`web/index.html`, `web/src/*`, uPlot's `dist` files) with its content
//! type and an ETag, and their version (a hash of them all), included by
//! `src/assets.rs`. The embedded index.html loads its files from
//! `/ui/v/<version>/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn npm_ci(web: &Path) {
    let lock = web.join("package-lock.json");
    let marker = web.join("node_modules/.package-lock.json");
    let fresh = match (modified(&marker), modified(&lock)) {
        (Some(m), Some(l)) => m >= l && web.join("node_modules/uplot/dist/uPlot.esm.js").exists(),
        _ => false,
    };
    if fresh {
        return;
    }
    let npm = std::env::var("OSPREY_NPM").unwrap_or_else(|_| "npm".into());
    let status = Command::new(&npm)
        .args([
            "ci",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--prefer-offline",
        ])
        .current_dir(web)
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "the dashboard needs npm to install uPlot ({npm} ci in {}): {e}; install Node.js and npm",
                web.display()
            )
        });
    assert!(
        status.success(),
        "`npm ci` in {} failed ({status}); the dashboard's front-end dependencies could not be installed",
        web.display()
    );
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// FNV-1a, for ETags (not security).
fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let web = manifest.join("web");
    for p in ["package.json", "package-lock.json", "index.html", "src"] {
        println!("cargo:rerun-if-changed={}", web.join(p).display());
    }
    println!("cargo:rerun-if-env-changed=OSPREY_NPM");
    npm_ci(&web);

    let mut files: Vec<(String, PathBuf)> = vec![("index.html".into(), web.join("index.html"))];
    let mut own: Vec<PathBuf> = std::fs::read_dir(web.join("src"))
        .expect("dashboard/web/src")
        .map(|e| e.expect("readable").path())
        .filter(|p| p.is_file())
        .collect();
    own.sort();
    for p in own {
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        files.push((name, p));
    }
    let dist = web.join("node_modules/uplot/dist");
    files.push(("uPlot.esm.js".into(), dist.join("uPlot.esm.js")));
    files.push(("uPlot.min.css".into(), dist.join("uPlot.min.css")));

    // The version of the files index.html loads: a hash of them all. The
    // page asks for `/ui/v/<version>/<file>`, which may be cached for
    // good (a new build has a new version), so that a returning browser
    // loads no module again instead of revalidating twenty of them.
    let mut all = Vec::new();
    for (name, path) in files.iter().skip(1) {
        let bytes =
            std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        all.extend_from_slice(name.as_bytes());
        all.extend_from_slice(&fnv(&bytes).to_le_bytes());
    }
    let version = format!("{:016x}", fnv(&all));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    let index = std::fs::read_to_string(&files[0].1).expect("web/index.html");
    let versioned = out_dir.join("index.html");
    std::fs::write(
        &versioned,
        index.replace("\"/ui/", &format!("\"/ui/v/{version}/")),
    )
    .expect("OUT_DIR is writable");
    files[0].1 = versioned;

    let mut out = format!(
        "/// The version of the embedded files (a hash of them): index.html loads them from `/ui/v/<VERSION>/`.\npub const VERSION: &str = {version:?};\n\n"
    );
    out.push_str(
        "/// Every embedded file: (name under /ui/, content type, ETag, bytes).\npub static FILES: &[(&str, &str, &str, &[u8])] = &[\n",
    );
    for (name, path) in &files {
        let bytes =
            std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        out.push_str(&format!(
            "    ({name:?}, {:?}, \"\\\"{:016x}\\\"\", include_bytes!({:?})),\n",
            content_type(name),
            fnv(&bytes),
            path.display().to_string()
        ));
    }
    out.push_str("];\n");
    let dest = out_dir.join("assets.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}
