//! A PromQL range query sized for a chart: times that may be relative
//! (`now-6h`), a step picked from the range when not given, and the result
//! reduced to at most one bucket per horizontal pixel per series, keeping
//! each bucket's minimum and maximum so that peaks survive.
//!
//! Used by `GET /api/v1/dashboard/query_range` (the browser's charts) and
//! `GET /api/v1/render` (server-side images).
//!
//! ## `GET /api/v1/dashboard/query_range`
//! Parameters: `query` (PromQL), `start`, `end` (RFC 3339, Unix seconds,
//! `now` or `now-<duration>`; default the last hour), `step` (evaluation
//! step; default `10s`, raised so that no series has more than 11,000
//! points), `width` (pixels, 1..=10000; default 1000), `legend` (optional
//! template such as `{{pod}}/{{container}}`).
//!
//! Answer, columnar so that the browser hands arrays to uPlot as they are:
//! ```json
//! {"status":"success","data":{
//!   "start":1790000000000,"end":1790003600000,"step_ms":10000,"bucket_ms":7200,
//!   "t":[1790000000000, …],                       // bucket starts, ms
//!   "series":[{"metric":{"pod":"web"},"name":"web",
//!              "min":[0.1,null,…],"max":[0.3,null,…], // per bucket; null = no sample
//!              "stats":{"min":0.1,"max":0.9,"avg":0.4,"last":0.2}}]}}
//! ```
//! `stats` are over every evaluated point (not the buckets), for legend
//! tables.
//!
//! With `format=binary` the same answer comes as `application/octet-stream`
//! (see [`encode_binary`]): the labels, names and stats as a small JSON
//! header, then the minima and maxima as little-endian `f32` arrays that
//! the browser wraps in a `Float32Array` without parsing. A 50-series
//! panel is about a third of the JSON's bytes and costs no `JSON.parse`
//! of its numbers. `format=json` (the default) stays for other clients.

use std::sync::Arc;

use serde::Serialize;

use crate::promql::Value;
use crate::promql::api::{parse_duration, parse_time};
use crate::server::ServerState;
use crate::server::error::ApiError;
use crate::storage::{Labels, Series};

/// Most points per series a query may evaluate (Prometheus's limit).
const MAX_POINTS: i64 = 11_000;
/// Default evaluation step: the agents' default scrape interval.
const DEFAULT_STEP_MS: i64 = 10_000;
/// Widest chart accepted, pixels.
pub const MAX_WIDTH: u32 = 10_000;

/// A validated chart query.
#[derive(Debug, Clone)]
pub struct ChartQuery {
    /// PromQL.
    pub query: String,
    /// Start, ms.
    pub start: i64,
    /// End, ms.
    pub end: i64,
    /// Evaluation step, ms.
    pub step: i64,
    /// Buckets wanted (pixels).
    pub width: u32,
    /// Legend template (`{{label}}` placeholders), or none.
    pub legend: Option<String>,
    /// How the answer is encoded.
    pub format: WireFormat,
}

/// The encodings of the chart query's answer (`format=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WireFormat {
    /// JSON (the default): `t`, and `min`/`max` arrays with `null` gaps.
    #[default]
    Json,
    /// A JSON header and `f32` arrays: see [`encode_binary`].
    Binary,
}

impl WireFormat {
    /// Reads the `format` parameter of the chart query (absent: JSON).
    pub fn from_param(v: Option<&str>) -> Result<Self, ApiError> {
        match v {
            None | Some("" | "json") => Ok(Self::Json),
            Some("binary") => Ok(Self::Binary),
            Some(other) => Err(bad(
                "format",
                format!("{other:?} is not one of \"json\", \"binary\""),
            )),
        }
    }
}

/// The first four bytes of a binary chart answer.
pub const BINARY_MAGIC: &[u8; 4] = b"OSC1";

fn bad(name: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("invalid parameter \"{name}\": {why}"))
}

/// Parses a time: RFC 3339, Unix seconds, `now`, or `now-<duration>`.
pub fn parse_chart_time(s: &str, now: i64) -> Result<i64, String> {
    let s = s.trim();
    if s == "now" {
        return Ok(now);
    }
    if let Some(rest) = s.strip_prefix("now-") {
        let d = parse_duration(rest)?;
        return Ok(now - d.as_millis() as i64);
    }
    parse_time(s)
}

impl ChartQuery {
    /// Reads and validates the query parameters; `default_width` applies
    /// when `width` is absent.
    pub fn from_params(
        get: impl Fn(&str) -> Option<String>,
        default_width: u32,
    ) -> Result<Self, ApiError> {
        let now = chrono::Utc::now().timestamp_millis();
        let query = get("query")
            .filter(|q| !q.trim().is_empty())
            .ok_or_else(|| bad("query", "missing; give a PromQL expression"))?;
        let end = match get("end") {
            Some(s) => parse_chart_time(&s, now).map_err(|e| bad("end", e))?,
            None => now,
        };
        let start = match get("start") {
            Some(s) => parse_chart_time(&s, now).map_err(|e| bad("start", e))?,
            None => end - 3_600_000,
        };
        if end <= start {
            return Err(bad("end", "the end must be after the start"));
        }
        let width = match get("width") {
            Some(w) => w
                .parse::<u32>()
                .ok()
                .filter(|w| (1..=MAX_WIDTH).contains(w))
                .ok_or_else(|| {
                    bad(
                        "width",
                        format!("{w:?} is not a number of pixels in 1..={MAX_WIDTH}"),
                    )
                })?,
            None => default_width,
        };
        let min_step = ((end - start) / MAX_POINTS).max(1);
        let step = match get("step") {
            Some(s) => {
                let d = parse_duration(&s).map_err(|e| bad("step", e))?.as_millis() as i64;
                if d <= 0 {
                    return Err(bad("step", "must be positive"));
                }
                if d < min_step {
                    return Err(bad(
                        "step",
                        format!(
                            "{s} gives more than {MAX_POINTS} points per series; use at least {min_step} ms"
                        ),
                    ));
                }
                d
            }
            None => DEFAULT_STEP_MS.max(min_step),
        };
        Ok(Self {
            query,
            start,
            end,
            step,
            width,
            legend: get("legend").filter(|l| !l.is_empty()),
            // `format` means png/svg to the render routes: the chart
            // query's handler reads its own.
            format: WireFormat::Json,
        })
    }

    /// Evaluates the query on a blocking thread (cancelled if the request
    /// goes away), under the default query limits.
    pub async fn evaluate(
        &self,
        state: &Arc<ServerState>,
        scope: &crate::server::auth::Scope,
    ) -> Result<Vec<Series>, ApiError> {
        let storage = state.storage.clone();
        let restrict = scope.matcher();
        let (q, start, end, step) = (self.query.clone(), self.start, self.end, self.step);
        let value = crate::promql::api::run_query(Default::default(), move |budget| {
            crate::promql::engine::range_query_in(&storage, &q, start, end, step, budget, restrict)
        })
        .await?;
        match value {
            Value::Matrix(series) => Ok(series),
            other => Err(ApiError::bad_request(format!(
                "the query gave a {} where a range of series was expected",
                other.result_type()
            ))),
        }
    }

    /// Bucket width, ms: the range over the width, never under the step.
    pub fn bucket_ms(&self) -> i64 {
        let w = self.width as i64;
        let per_pixel = (self.end - self.start + w - 1) / w;
        per_pixel.max(self.step).max(1)
    }
}

/// The legend text of a series: the template with `{{label}}` replaced,
/// or the labels written PromQL-style.
pub fn legend_name(labels: &Labels, template: Option<&str>) -> String {
    match template {
        Some(t) => {
            let mut out = String::with_capacity(t.len());
            let mut rest = t;
            while let Some(open) = rest.find("{{") {
                out.push_str(&rest[..open]);
                let after = &rest[open + 2..];
                let Some(close) = after.find("}}") else {
                    out.push_str(&rest[open..]);
                    rest = "";
                    break;
                };
                out.push_str(labels.get(after[..close].trim()).unwrap_or(""));
                rest = &after[close + 2..];
            }
            out.push_str(rest);
            out
        }
        None if labels.is_empty() => "value".into(),
        None => {
            let s = labels.to_string();
            s.strip_suffix("{}").map(str::to_string).unwrap_or(s)
        }
    }
}

/// Whole-series statistics for legend tables.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Stats {
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Mean value.
    pub avg: f64,
    /// The latest value.
    pub last: f64,
}

/// One series reduced to buckets.
#[derive(Debug, Clone, Serialize)]
pub struct Bucketed {
    /// Its labels, as a JSON object.
    pub metric: serde_json::Value,
    /// Its legend text.
    pub name: String,
    /// Minimum per bucket (`None`: no sample in that bucket).
    pub min: Vec<Option<f64>>,
    /// Maximum per bucket.
    pub max: Vec<Option<f64>>,
    /// Over every point; `None` when the series has no finite value.
    pub stats: Option<Stats>,
}

/// All series of a query on one time grid.
#[derive(Debug, Clone, Serialize)]
pub struct Downsampled {
    /// Start, ms.
    pub start: i64,
    /// End, ms.
    pub end: i64,
    /// Evaluation step, ms.
    pub step_ms: i64,
    /// Bucket width, ms.
    pub bucket_ms: i64,
    /// Bucket starts, ms.
    pub t: Vec<i64>,
    /// The series.
    pub series: Vec<Bucketed>,
}

/// `v` rounded to `digits` significant decimal digits.
pub fn round_significant(v: f64, digits: i32) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let scale = 10f64.powi(digits - 1 - v.abs().log10().floor() as i32);
    let r = (v * scale).round() / scale;
    if r.is_finite() { r } else { v }
}

/// Reduces `series` to buckets of `q.bucket_ms()` from `q.start`.
pub fn downsample(q: &ChartQuery, series: &[Series]) -> Downsampled {
    let bucket = q.bucket_ms();
    let n = ((q.end - q.start) / bucket + 1) as usize;
    let t: Vec<i64> = (0..n as i64).map(|i| q.start + i * bucket).collect();
    let series = series
        .iter()
        .map(|s| {
            // Empty buckets hold ±∞ until the end (samples are finite);
            // the bucket of the previous sample is tried before dividing,
            // since samples come in time order.
            let mut lo_b = vec![f64::INFINITY; n];
            let mut hi_b = vec![f64::NEG_INFINITY; n];
            let (mut i, mut i_start) = (0usize, q.start);
            let (mut lo, mut hi, mut sum, mut count, mut last) =
                (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0usize, f64::NAN);
            for sample in &s.samples {
                let (t, v) = (sample.t, sample.v);
                if !v.is_finite() || t < q.start || t > q.end {
                    continue;
                }
                if !(t >= i_start && t - i_start < bucket) {
                    i = (((t - q.start) / bucket) as usize).min(n - 1);
                    i_start = q.start + i as i64 * bucket;
                }
                lo_b[i] = lo_b[i].min(v);
                hi_b[i] = hi_b[i].max(v);
                lo = lo.min(v);
                hi = hi.max(v);
                sum += v;
                count += 1;
                last = v;
            }
            let present = |x: &f64| x.is_finite().then_some(*x);
            let mut min: Vec<Option<f64>> = lo_b.iter().map(present).collect();
            let mut max: Vec<Option<f64>> = hi_b.iter().map(present).collect();
            // Charts need about 4 significant digits (a pixel in a few
            // thousand); 7 keep the JSON a third of full precision's size.
            // (The binary format's f32 has about as many anyway.)
            if q.format == WireFormat::Json {
                for v in min.iter_mut().chain(max.iter_mut()).flatten() {
                    *v = round_significant(*v, 7);
                }
            }
            Bucketed {
                metric: crate::promql::value::labels_json(&s.labels),
                name: legend_name(&s.labels, q.legend.as_deref()),
                min,
                max,
                stats: (count > 0).then(|| Stats {
                    min: lo,
                    max: hi,
                    avg: sum / count as f64,
                    last,
                }),
            }
        })
        .collect();
    Downsampled {
        start: q.start,
        end: q.end,
        step_ms: q.step,
        bucket_ms: bucket,
        t,
        series,
    }
}

/// Encodes a downsampled answer for `format=binary`:
///
/// | bytes | what |
/// |---|---|
/// | 0..4 | `OSC1` |
/// | 4..8 | `H`, the header's length, u32 little-endian |
/// | 8..8+H | the header, JSON: `{"start","end","step_ms","bucket_ms","buckets":N,"series":[{"metric","name","stats"}]}` |
/// | then | zero bytes up to a multiple of 4 |
/// | then | per series in header order: `N` minima, then `N` maxima, f32 little-endian; NaN = no sample |
///
/// Bucket `i` starts at `start + i × bucket_ms` (the JSON's `t`).
pub fn encode_binary(d: &Downsampled) -> Vec<u8> {
    #[derive(Serialize)]
    struct Head<'a> {
        metric: &'a serde_json::Value,
        name: &'a str,
        stats: Option<Stats>,
    }
    let n = d.t.len();
    let header = serde_json::json!({
        "start": d.start, "end": d.end, "step_ms": d.step_ms, "bucket_ms": d.bucket_ms,
        "buckets": n,
        "series": d.series.iter().map(|s| Head { metric: &s.metric, name: &s.name, stats: s.stats })
            .collect::<Vec<_>>(),
    });
    let header = serde_json::to_vec(&header).expect("JSON values serialise");
    let body = (8 + header.len()).next_multiple_of(4);
    let mut out = Vec::with_capacity(body + d.series.len() * n * 8);
    out.extend_from_slice(BINARY_MAGIC);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    out.resize(body, 0);
    for s in &d.series {
        for v in s.min.iter().chain(&s.max) {
            out.extend_from_slice(&v.map_or(f32::NAN, |v| v as f32).to_le_bytes());
        }
    }
    out
}

/// `GET /api/v1/dashboard/query_range`: see the module documentation.
pub async fn query_range(
    axum::extract::State(state): axum::extract::State<Arc<ServerState>>,
    scope: crate::server::auth::Scope,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let params = crate::promql::api::Params::from_request(raw.as_deref(), &Default::default(), &[]);
    let mut q = ChartQuery::from_params(|k| params.get(k).map(str::to_string), 1000)?;
    q.format = WireFormat::from_param(params.get("format"))?;
    let series = q.evaluate(&state, &scope).await?;
    let data = downsample(&q, &series);
    Ok(match q.format {
        WireFormat::Json => {
            axum::Json(serde_json::json!({"status": "success", "data": data})).into_response()
        }
        WireFormat::Binary => (
            [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
            encode_binary(&data),
        )
            .into_response(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Sample;

    fn query(start: i64, end: i64, step: i64, width: u32) -> ChartQuery {
        ChartQuery {
            query: "x".into(),
            start,
            end,
            step,
            width,
            legend: None,
            format: WireFormat::Json,
        }
    }

    #[test]
    fn buckets_keep_min_and_max() {
        let q = query(0, 99_000, 1_000, 10);
        assert_eq!(q.bucket_ms(), 9_900);
        let samples: Vec<Sample> = (0..100)
            .map(|i| Sample {
                t: i * 1000,
                // One spike at 55 s that a mean would flatten.
                v: if i == 55 { 100.0 } else { (i % 3) as f64 },
            })
            .collect();
        let s = Series {
            labels: Labels::from_pairs([("pod", "web")]),
            samples,
        };
        let d = downsample(&q, &[s]);
        assert_eq!(d.t.len(), 11);
        assert_eq!(d.t[1], 9_900);
        let b = &d.series[0];
        assert_eq!(b.name, "{pod=\"web\"}");
        assert_eq!(b.max[5], Some(100.0), "the spike survives");
        assert_eq!(b.min[5], Some(0.0));
        assert_eq!(b.max.iter().flatten().count(), 11);
        let st = b.stats.unwrap();
        assert_eq!((st.min, st.max, st.last), (0.0, 100.0, 0.0));
    }

    #[test]
    fn empty_buckets_are_null_and_nan_is_skipped() {
        let q = query(0, 10_000, 1_000, 10);
        let s = Series {
            labels: Labels::default(),
            samples: vec![
                Sample { t: 0, v: 1.0 },
                Sample {
                    t: 5_000,
                    v: f64::NAN,
                },
            ],
        };
        let d = downsample(&q, &[s]);
        assert_eq!(d.series[0].max[0], Some(1.0));
        assert_eq!(d.series[0].max[5], None);
        assert_eq!(d.series[0].name, "value");
    }

    #[test]
    fn binary_answer_has_header_then_f32_columns() {
        let q = query(0, 30_000, 10_000, 4);
        let s = Series {
            labels: Labels::from_pairs([("pod", "web")]),
            samples: vec![Sample { t: 0, v: 1.5 }, Sample { t: 20_000, v: -2.0 }],
        };
        let d = downsample(&q, &[s]);
        let bytes = encode_binary(&d);
        assert_eq!(&bytes[..4], BINARY_MAGIC);
        let h = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + h]).unwrap();
        assert_eq!(header["buckets"], 4);
        assert_eq!(header["bucket_ms"], 10_000);
        assert_eq!(header["series"][0]["name"], "{pod=\"web\"}");
        assert_eq!(header["series"][0]["stats"]["min"], -2.0);
        let body = (8 + h).next_multiple_of(4);
        assert_eq!(
            bytes.len(),
            body + 2 * 4 * 4,
            "minima then maxima, 4 buckets"
        );
        let f: Vec<f32> = bytes[body..]
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!((f[0], f[2], f[4], f[6]), (1.5, -2.0, 1.5, -2.0));
        assert!(f[1].is_nan() && f[3].is_nan() && f[7].is_nan(), "{f:?}");
        assert_eq!(
            WireFormat::from_param(Some("binary")).unwrap(),
            WireFormat::Binary
        );
        let e = WireFormat::from_param(Some("csv")).unwrap_err();
        assert!(e.message.contains("\"format\""), "{}", e.message);
    }

    /// The bucketing as first written (a division and two `Option`s per
    /// sample), to check the faster one against.
    fn reference(q: &ChartQuery, s: &Series) -> (Vec<Option<f64>>, Vec<Option<f64>>) {
        let bucket = q.bucket_ms();
        let n = ((q.end - q.start) / bucket + 1) as usize;
        let mut min = vec![None::<f64>; n];
        let mut max = vec![None::<f64>; n];
        for sample in &s.samples {
            if !sample.v.is_finite() || sample.t < q.start || sample.t > q.end {
                continue;
            }
            let i = (((sample.t - q.start) / bucket) as usize).min(n - 1);
            min[i] = Some(min[i].map_or(sample.v, |m: f64| m.min(sample.v)));
            max[i] = Some(max[i].map_or(sample.v, |m: f64| m.max(sample.v)));
        }
        (min, max)
    }

    #[test]
    fn bucketing_matches_the_plain_division_in_any_order() {
        let mut rng = fastrand::Rng::with_seed(7);
        for round in 0..200 {
            let start = rng.i64(-50_000..50_000);
            let end = start + rng.i64(1..200_000);
            let mut q = query(start, end, rng.i64(1..5_000), rng.u32(1..300));
            // No rounding (JSON's), to compare bits.
            q.format = WireFormat::Binary;
            let mut samples: Vec<Sample> = (0..rng.usize(0..500))
                .map(|_| Sample {
                    t: rng.i64(start - 1_000..end + 1_000),
                    v: match rng.u8(0..20) {
                        0 => f64::NAN,
                        1 => f64::INFINITY,
                        2 => -0.0,
                        _ => rng.f64() * 100.0 - 50.0,
                    },
                })
                .collect();
            if round % 2 == 0 {
                samples.sort_by_key(|s| s.t);
            }
            let s = Series {
                labels: Labels::default(),
                samples,
            };
            let d = downsample(&q, std::slice::from_ref(&s));
            let (min, max) = reference(&q, &s);
            let bits =
                |v: &[Option<f64>]| v.iter().map(|x| x.map(f64::to_bits)).collect::<Vec<_>>();
            assert_eq!(bits(&d.series[0].min), bits(&min), "round {round}");
            assert_eq!(bits(&d.series[0].max), bits(&max), "round {round}");
        }
    }

    #[test]
    fn rounding_keeps_significant_digits() {
        assert_eq!(round_significant(123_456_789.123_456, 7), 123_456_800.0);
        assert_eq!(round_significant(0.000_123_456_789, 3), 0.000_123);
        assert_eq!(round_significant(-9.876_543_21, 4), -9.877);
        assert_eq!(round_significant(0.0, 7), 0.0);
    }

    #[test]
    fn legends_fill_templates() {
        let l = Labels::from_pairs([("__name__", "up"), ("pod", "web"), ("container", "c")]);
        assert_eq!(legend_name(&l, Some("{{pod}}/{{ container }}")), "web/c");
        assert_eq!(legend_name(&l, Some("{{missing}}-x")), "-x");
        assert_eq!(legend_name(&l, None), "up{container=\"c\", pod=\"web\"}");
        let bare = Labels::from_pairs([("__name__", "up")]);
        assert_eq!(legend_name(&bare, None), "up");
    }

    #[test]
    fn params_are_validated_with_names() {
        let get = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let e = ChartQuery::from_params(get(&[]), 100).unwrap_err();
        assert!(e.message.contains("\"query\""), "{}", e.message);
        let e = ChartQuery::from_params(get(&[("query", "up"), ("width", "0")]), 100).unwrap_err();
        assert!(e.message.contains("\"width\""));
        let e = ChartQuery::from_params(
            get(&[("query", "up"), ("start", "now"), ("end", "now-1h")]),
            100,
        )
        .unwrap_err();
        assert!(e.message.contains("\"end\""));
        let e = ChartQuery::from_params(
            get(&[
                ("query", "up"),
                ("start", "0"),
                ("end", "86400"),
                ("step", "1s"),
            ]),
            100,
        )
        .unwrap_err();
        assert!(e.message.contains("\"step\""));
        let q = ChartQuery::from_params(get(&[("query", "up"), ("start", "now-6h")]), 300).unwrap();
        assert_eq!(q.end - q.start, 6 * 3_600_000);
        assert_eq!((q.step, q.width), (10_000, 300));
    }
}
