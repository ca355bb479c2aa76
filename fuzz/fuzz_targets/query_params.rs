//! Query strings (and form bodies) of the read APIs: the PromQL API's
//! `time`, `start`, `end`, `step`, `timeout` and `match[]` selectors, and
//! the log APIs' ranges, limits, cursors, directions and steps. The input
//! is a raw URL query string, parsed as the handlers parse it.
#![no_main]

use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use osprey::logs::api as logs;
use osprey::promql::api::{self as promql, Params};

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let params = Params::from_request(Some(query), &HeaderMap::new(), &[]);
    // PromQL API.
    for name in ["time", "start", "end"] {
        if let Some(v) = params.get(name) {
            let _ = promql::parse_time(v);
        }
    }
    for name in ["step", "timeout"] {
        if let Some(v) = params.get(name) {
            let _ = promql::parse_duration(v);
        }
    }
    if let Ok((start, end, step)) = promql::range_params(&params) {
        assert!(start <= end && step > 0);
        assert!((end - start) / step <= promql::MAX_POINTS_PER_SERIES);
    }
    let _ = promql::time_range(&params);
    let _ = promql::selectors(&params, false, &osprey::server::auth::Scope::All);
    // Log APIs.
    let _ = logs::search_params(&params);
    if let Ok((start, end, step)) = logs::histogram_params(&params) {
        assert!(start < end && step > 0);
    }
    let _ = logs::loki_query_params(&params);
    let _ = logs::loki_range(&params, 3_600_000_000_000);
    // The same pairs as a form body.
    let mut form = HeaderMap::new();
    form.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    let params = Params::from_request(None, &form, data);
    let _ = promql::range_params(&params);
    let _ = promql::selectors(&params, true, &osprey::server::auth::Scope::All);
});
