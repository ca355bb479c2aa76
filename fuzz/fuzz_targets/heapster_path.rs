//! The Heapster model API's paths (`/api/v1/model/<path>`, with
//! percent-escapes and metric names containing slashes) and the query
//! string of its metric routes (`start`, `end`, `labels`). The input is
//! `<path>?<query>`.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use osprey::heapster::api::{parse_metric_query, parse_model_path};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (path, query) = s.split_once('?').unwrap_or((s, ""));
    let _ = parse_model_path(path);
    let q: BTreeMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if let Ok(m) = parse_metric_query(&q, 1_700_000_000_000) {
        assert!(m.start_ms <= m.end_ms, "{m:?}");
    }
});
