//! The front-end's static files, embedded at build time by `build.rs`:
//! `web/index.html`, the modules and styles of `web/src/`, and uPlot's
//! `dist` files installed from npm (never committed).

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// `Content-Type`.
    pub content_type: &'static str,
    /// A strong ETag (quoted).
    pub etag: &'static str,
    /// The bytes.
    pub bytes: &'static [u8],
}

/// The file served at `/ui/<name>`.
pub fn get(name: &str) -> Option<Asset> {
    FILES
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|&(_, content_type, etag, bytes)| Asset {
            content_type,
            etag,
            bytes,
        })
}

/// The page every dashboard URL loads.
pub fn index() -> Asset {
    get("index.html").expect("index.html is embedded")
}

#[cfg(test)]
mod tests {
    #[test]
    fn uplot_and_the_app_are_embedded() {
        let u = super::get("uPlot.esm.js").unwrap();
        assert_eq!(u.content_type, "text/javascript; charset=utf-8");
        assert!(u.bytes.len() > 20_000);
        assert!(super::get("app.js").is_some());
        assert!(super::index().bytes.starts_with(b"<!doctype html>"));
        assert!(super::get("../Cargo.toml").is_none());
        let index = std::str::from_utf8(super::index().bytes).unwrap();
        assert!(
            index.contains(&format!("src=\"/ui/v/{}/app.js\"", super::VERSION)),
            "{index}"
        );
        assert!(
            !index.contains("\"/ui/app.js"),
            "every file is loaded by version"
        );
    }
}
