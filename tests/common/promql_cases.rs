//! The table of PromQL expressions over [`super::promql_data`] with the
//! results Prometheus gives, shared by the evaluation tests and the
//! comparison against a real Prometheus.
//!
//! Times are seconds after the data's base. In expressions, `T+<secs>` is
//! replaced by the absolute Unix time (for `@`). Expected series are
//! written `name{a="1",b="2"}` with labels sorted; a scalar result is
//! written `scalar`.

#![allow(dead_code)]

/// An instant query and its expected vector (order ignored unless
/// `ordered`).
pub struct InstantCase {
    /// The expression.
    pub expr: &'static str,
    /// Evaluation time, seconds after the base.
    pub at: i64,
    /// Expected `(series, value)` pairs.
    pub want: &'static [(&'static str, f64)],
    /// Whether the order of the result matters (sort, sort_desc).
    pub ordered: bool,
}

const fn case(expr: &'static str, at: i64, want: &'static [(&'static str, f64)]) -> InstantCase {
    InstantCase {
        expr,
        at,
        want,
        ordered: false,
    }
}

/// A series written with this suffix expects its value plus the base in
/// seconds (for `time()` and `timestamp()`).
pub const PLUS_BASE: &str = "+base";

/// The instant cases.
pub const INSTANT: &[InstantCase] = &[
    case(
        r#"req_total{instance="a"}"#,
        600,
        &[(r#"req_total{instance="a",job="api"}"#, 600.0)],
    ),
    // The window of a range selector is closed: [540 s, 600 s] holds 7 samples.
    case(
        r#"rate(req_total{instance="a"}[1m])"#,
        600,
        &[(r#"{instance="a",job="api"}"#, 1.0)],
    ),
    // Counter reset at 300 s: 140 → 145, reset to 0, → 50.
    case(
        r#"increase(req_total{instance="b"}[2m])"#,
        400,
        &[(r#"{instance="b",job="api"}"#, 55.0)],
    ),
    case(
        r#"rate(req_total{instance="b"}[2m])"#,
        400,
        &[(r#"{instance="b",job="api"}"#, 55.0 / 120.0)],
    ),
    // irate across the reset takes the new value as the increase.
    case(
        r#"irate(req_total{instance="b"}[1m])"#,
        300,
        &[(r#"{instance="b",job="api"}"#, 0.0)],
    ),
    case(
        r#"irate(req_total{instance="a"}[1m])"#,
        600,
        &[(r#"{instance="a",job="api"}"#, 1.0)],
    ),
    case(
        "resets(req_total[10m])",
        600,
        &[
            (r#"{instance="a",job="api"}"#, 0.0),
            (r#"{instance="b",job="api"}"#, 1.0),
            (r#"{instance="c",job="web"}"#, 0.0),
        ],
    ),
    // Lookback: temp{a} stops at 200 s; it is visible until 500 s inclusive.
    case(
        "temp",
        450,
        &[
            (r#"temp{instance="a"}"#, 20.0),
            (r#"temp{instance="b"}"#, 7.5),
        ],
    ),
    case(
        "temp",
        500,
        &[
            (r#"temp{instance="a"}"#, 20.0),
            (r#"temp{instance="b"}"#, 5.0),
        ],
    ),
    case("temp", 501, &[(r#"temp{instance="b"}"#, 5.0)]),
    // Staleness: up{c} has a staleness marker at 110 s.
    case(
        "up",
        105,
        &[(r#"up{instance="a"}"#, 1.0), (r#"up{instance="c"}"#, 1.0)],
    ),
    case("up", 150, &[(r#"up{instance="a"}"#, 1.0)]),
    case(
        r#"count_over_time(up{instance="c"}[1m])"#,
        130,
        &[(r#"{instance="c"}"#, 4.0)],
    ),
    case(
        r#"absent_over_time(up{instance="c"}[1m])"#,
        300,
        &[(r#"{instance="c"}"#, 1.0)],
    ),
    case(r#"absent_over_time(nonexistent[1m])"#, 300, &[("{}", 1.0)]),
    case(
        "sum by (job) (rate(req_total[1m]))",
        200,
        &[(r#"{job="api"}"#, 1.5), (r#"{job="web"}"#, 0.2)],
    ),
    case("avg without (instance) (temp)", 100, &[("{}", 22.5)]),
    case("sum without (s) (tie)", 300, &[("{}", 5.0)]),
    case("sum(up)", 50, &[("{}", 2.0)]),
    case("count(req_total)", 50, &[("{}", 3.0)]),
    case("min(temp)", 100, &[("{}", 20.0)]),
    case("max(temp)", 100, &[("{}", 25.0)]),
    case("group(tie)", 100, &[("{}", 1.0)]),
    case("avg(tie)", 100, &[("{}", 1.25)]),
    case("stddev(tie)", 300, &[("{}", 0.4330127018922193)]),
    case("stdvar(tie)", 300, &[("{}", 0.1875)]),
    case("quantile(0.5, tie)", 300, &[("{}", 1.0)]),
    case(
        "count_values(\"value\", tie)",
        300,
        &[(r#"{value="1"}"#, 3.0), (r#"{value="2"}"#, 1.0)],
    ),
    // topk ties: Prometheus's heap keeps b (not a) next to c.
    case(
        "topk(2, tie)",
        300,
        &[(r#"tie{s="b"}"#, 1.0), (r#"tie{s="c"}"#, 2.0)],
    ),
    case("bottomk(1, tie)", 300, &[(r#"tie{s="a"}"#, 1.0)]),
    case(
        "bottomk(2, tie)",
        300,
        &[(r#"tie{s="a"}"#, 1.0), (r#"tie{s="b"}"#, 1.0)],
    ),
    case(
        "topk by (job) (1, req_total)",
        600,
        &[
            (r#"req_total{instance="a",job="api"}"#, 600.0),
            (r#"req_total{instance="c",job="web"}"#, 120.0),
        ],
    ),
    // Joins.
    case(
        "up * on(instance) group_left(node) node_info",
        50,
        &[(r#"{instance="a",node="n1"}"#, 1.0)],
    ),
    case(
        "req_total / on(instance) group_left(node) node_info",
        600,
        &[
            (r#"{instance="a",job="api",node="n1"}"#, 600.0),
            (r#"{instance="b",job="api",node="n2"}"#, 150.0),
        ],
    ),
    case(
        "node_info * on(instance) group_right(node) req_total",
        600,
        &[
            (r#"{instance="a",job="api",node="n1"}"#, 600.0),
            (r#"{instance="b",job="api",node="n2"}"#, 150.0),
        ],
    ),
    case(
        "(req_total - req_total offset 1m) / 60",
        600,
        &[
            (r#"{instance="a",job="api"}"#, 1.0),
            (r#"{instance="b",job="api"}"#, 0.5),
            (r#"{instance="c",job="web"}"#, 0.2),
        ],
    ),
    case(
        "req_total{job=\"api\"} + ignoring(job) req_total{job=\"api\"}",
        600,
        // One-to-one matching drops the ignored labels from the result.
        &[(r#"{instance="a"}"#, 1200.0), (r#"{instance="b"}"#, 300.0)],
    ),
    // Comparisons.
    case(
        "tie > bool 1",
        300,
        &[
            (r#"{s="a"}"#, 0.0),
            (r#"{s="b"}"#, 0.0),
            (r#"{s="c"}"#, 1.0),
            (r#"{s="d"}"#, 0.0),
        ],
    ),
    case("tie > 1", 300, &[(r#"tie{s="c"}"#, 2.0)]),
    case("1 < tie", 300, &[(r#"tie{s="c"}"#, 2.0)]),
    case(
        "tie == on(s) group_left tie",
        300,
        &[
            (r#"tie{s="a"}"#, 1.0),
            (r#"tie{s="b"}"#, 1.0),
            (r#"tie{s="c"}"#, 2.0),
            (r#"tie{s="d"}"#, 1.0),
        ],
    ),
    // Set operators.
    case(
        "up and on(instance) node_info",
        50,
        &[(r#"up{instance="a"}"#, 1.0)],
    ),
    case(
        "up unless on(instance) node_info",
        50,
        &[(r#"up{instance="c"}"#, 1.0)],
    ),
    case(
        r#"temp{instance="a"} or temp"#,
        100,
        &[
            (r#"temp{instance="a"}"#, 20.0),
            (r#"temp{instance="b"}"#, 25.0),
        ],
    ),
    // Histograms.
    case("histogram_quantile(0.5, lat_bucket)", 600, &[("{}", 0.3)]),
    case(
        "histogram_quantile(0.9, rate(lat_bucket[1m]))",
        600,
        &[("{}", 0.5)],
    ),
    // absent.
    case(
        r#"absent(nonexistent{job="x"})"#,
        600,
        &[(r#"{job="x"}"#, 1.0)],
    ),
    case("absent(up)", 600, &[]),
    // Labels.
    case(
        r#"label_replace(up{instance="a"}, "host", "h-$1", "instance", "(.*)")"#,
        50,
        &[(r#"up{host="h-a",instance="a"}"#, 1.0)],
    ),
    case(
        r#"label_join(node_info{instance="a"}, "x", "-", "instance", "node")"#,
        50,
        &[(r#"node_info{instance="a",node="n1",x="a-n1"}"#, 1.0)],
    ),
    // Range functions.
    case(
        r#"deriv(temp{instance="b"}[1m])"#,
        300,
        &[(r#"{instance="b"}"#, -0.05)],
    ),
    case(
        r#"predict_linear(temp{instance="b"}[1m], 60)"#,
        300,
        &[(r#"{instance="b"}"#, 12.0)],
    ),
    case(
        r#"delta(temp{instance="b"}[1m])"#,
        300,
        &[(r#"{instance="b"}"#, -3.0)],
    ),
    case(
        r#"idelta(temp{instance="b"}[1m])"#,
        300,
        &[(r#"{instance="b"}"#, -0.5)],
    ),
    case(
        r#"changes(temp{instance="a"}[1m])"#,
        100,
        &[(r#"{instance="a"}"#, 6.0)],
    ),
    case(
        r#"max_over_time(temp{instance="a"}[1m])"#,
        100,
        &[(r#"{instance="a"}"#, 24.0)],
    ),
    case(
        r#"min_over_time(temp{instance="a"}[1m])"#,
        100,
        &[(r#"{instance="a"}"#, 20.0)],
    ),
    case(
        r#"avg_over_time(temp{instance="a"}[1m])"#,
        100,
        &[(r#"{instance="a"}"#, 22.0)],
    ),
    case(
        r#"sum_over_time(temp{instance="a"}[1m])"#,
        100,
        &[(r#"{instance="a"}"#, 154.0)],
    ),
    case(
        r#"last_over_time(temp{instance="a"}[1m])"#,
        100,
        &[(r#"temp{instance="a"}"#, 20.0)],
    ),
    case(
        r#"quantile_over_time(0.5, temp{instance="a"}[1m])"#,
        100,
        &[(r#"{instance="a"}"#, 22.0)],
    ),
    case(
        r#"stddev_over_time(temp{instance="a"}[1m])"#,
        100,
        &[(r#"{instance="a"}"#, 1.6035674514745464)],
    ),
    // offset, @ and subqueries.
    case(
        r#"req_total{instance="a"} offset 1m"#,
        600,
        &[(r#"req_total{instance="a",job="api"}"#, 540.0)],
    ),
    case(
        r#"req_total{instance="a"} @ T+300"#,
        600,
        &[(r#"req_total{instance="a",job="api"}"#, 300.0)],
    ),
    case(
        r#"sum_over_time(up{instance="a"}[5m:1m])"#,
        600,
        &[(r#"{instance="a"}"#, 6.0)],
    ),
    case(
        r#"max_over_time(rate(req_total{instance="b"}[1m])[3m:1m])"#,
        420,
        &[(r#"{instance="b",job="api"}"#, 0.5)],
    ),
    // Scalars and math.
    case("time()", 600, &[("scalar+base", 600.0)]),
    case("vector(1)", 600, &[("{}", 1.0)]),
    case(r#"scalar(up{instance="a"})"#, 600, &[("scalar", 1.0)]),
    case("scalar(tie)", 600, &[("scalar", f64::NAN)]),
    case(
        r#"timestamp(temp{instance="a"})"#,
        450,
        &[(r#"{instance="a"}+base"#, 200.0)],
    ),
    case(
        "clamp(temp, 21, 24)",
        100,
        &[(r#"{instance="a"}"#, 21.0), (r#"{instance="b"}"#, 24.0)],
    ),
    case(
        "clamp_max(temp, 21)",
        100,
        &[(r#"{instance="a"}"#, 20.0), (r#"{instance="b"}"#, 21.0)],
    ),
    case(
        "clamp_min(temp, 21)",
        100,
        &[(r#"{instance="a"}"#, 21.0), (r#"{instance="b"}"#, 25.0)],
    ),
    case(
        r#"abs(-temp{instance="b"})"#,
        100,
        &[(r#"{instance="b"}"#, 25.0)],
    ),
    case(
        r#"sqrt(tie{s="c"})"#,
        100,
        &[(r#"{s="c"}"#, std::f64::consts::SQRT_2)],
    ),
    case(
        r#"exp(tie{s="c"})"#,
        100,
        &[(r#"{s="c"}"#, 7.38905609893065)],
    ),
    case(
        r#"ln(tie{s="c"})"#,
        100,
        &[(r#"{s="c"}"#, std::f64::consts::LN_2)],
    ),
    case(r#"log2(tie{s="c"})"#, 100, &[(r#"{s="c"}"#, 1.0)]),
    case(
        r#"log10(tie{s="c"})"#,
        100,
        &[(r#"{s="c"}"#, std::f64::consts::LOG10_2)],
    ),
    case(
        r#"round(temp{instance="b"})"#,
        10,
        &[(r#"{instance="b"}"#, 30.0)],
    ),
    case(
        r#"ceil(temp{instance="b"})"#,
        10,
        &[(r#"{instance="b"}"#, 30.0)],
    ),
    case(
        r#"floor(temp{instance="b"})"#,
        10,
        &[(r#"{instance="b"}"#, 29.0)],
    ),
    case(
        r#"round(temp{instance="b"}, 2)"#,
        10,
        &[(r#"{instance="b"}"#, 30.0)],
    ),
    case("2 ^ 3 + 5 % 3", 10, &[("scalar", 10.0)]),
    case(
        r#"-req_total{instance="a"}"#,
        600,
        &[(r#"{instance="a",job="api"}"#, -600.0)],
    ),
    case(
        r#"{__name__="up", instance!~"a"}"#,
        50,
        &[(r#"up{instance="c"}"#, 1.0)],
    ),
    case(
        r#"req_total{instance=~"a|b", job!="web"}"#,
        600,
        &[
            (r#"req_total{instance="a",job="api"}"#, 600.0),
            (r#"req_total{instance="b",job="api"}"#, 150.0),
        ],
    ),
    InstantCase {
        expr: "sort_desc(req_total)",
        at: 600,
        want: &[
            (r#"req_total{instance="a",job="api"}"#, 600.0),
            (r#"req_total{instance="b",job="api"}"#, 150.0),
            (r#"req_total{instance="c",job="web"}"#, 120.0),
        ],
        ordered: true,
    },
    InstantCase {
        expr: "sort(req_total)",
        at: 600,
        want: &[
            (r#"req_total{instance="c",job="web"}"#, 120.0),
            (r#"req_total{instance="b",job="api"}"#, 150.0),
            (r#"req_total{instance="a",job="api"}"#, 600.0),
        ],
        ordered: true,
    },
];

/// A range query and its expected matrix.
pub struct RangeCase {
    /// The expression.
    pub expr: &'static str,
    /// Start, end, step: seconds after the base.
    pub start: i64,
    /// End.
    pub end: i64,
    /// Step, seconds.
    pub step: i64,
    /// Expected series and their `(time after base, value)` points.
    pub want: &'static [(&'static str, &'static [(i64, f64)])],
}

/// The range cases.
pub const RANGE: &[RangeCase] = &[
    RangeCase {
        expr: r#"rate(req_total{instance="b"}[1m])"#,
        start: 240,
        end: 420,
        step: 60,
        want: &[(
            r#"{instance="b",job="api"}"#,
            &[(240, 0.5), (300, 25.0 / 60.0), (360, 0.5), (420, 0.5)],
        )],
    },
    RangeCase {
        expr: r#"temp{instance="a"}"#,
        start: 0,
        end: 600,
        step: 100,
        want: &[(
            r#"temp{instance="a"}"#,
            &[
                (0, 20.0),
                (100, 20.0),
                (200, 20.0),
                (300, 20.0),
                (400, 20.0),
                (500, 20.0),
            ],
        )],
    },
    RangeCase {
        expr: "up",
        start: 0,
        end: 200,
        step: 50,
        want: &[
            (
                r#"up{instance="a"}"#,
                &[(0, 1.0), (50, 1.0), (100, 1.0), (150, 1.0), (200, 1.0)],
            ),
            (r#"up{instance="c"}"#, &[(0, 1.0), (50, 1.0), (100, 1.0)]),
        ],
    },
    RangeCase {
        expr: "sum(up)",
        start: 0,
        end: 200,
        step: 50,
        want: &[(
            "{}",
            &[(0, 2.0), (50, 2.0), (100, 2.0), (150, 1.0), (200, 1.0)],
        )],
    },
    RangeCase {
        expr: "topk(1, tie)",
        start: 0,
        end: 120,
        step: 60,
        want: &[(r#"tie{s="c"}"#, &[(0, 2.0), (60, 2.0), (120, 2.0)])],
    },
    RangeCase {
        expr: "1 + 1",
        start: 0,
        end: 120,
        step: 60,
        want: &[("{}", &[(0, 2.0), (60, 2.0), (120, 2.0)])],
    },
];

/// Replaces `T+<secs>` with the absolute Unix time `base_s + secs`.
pub fn expand(expr: &str, base_s: i64) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(i) = rest.find("T+") {
        out.push_str(&rest[..i]);
        let digits: String = rest[i + 2..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let secs: i64 = digits.parse().expect("digits after T+");
        out.push_str(&(base_s + secs).to_string());
        rest = &rest[i + 2 + digits.len()..];
    }
    out.push_str(rest);
    out
}

/// Further expressions compared only against a real Prometheus (no
/// hand-computed expectation), as instant queries at several times and as
/// range queries.
pub const COMPARED_ONLY: &[&str] = &[
    "req_total @ start()",
    "rate(req_total[1m] @ end())",
    "req_total offset -1m",
    "max_over_time(up[2m:15s] offset 30s)",
    "deriv(temp[3m])",
    r#"count_values by (job) ("v", req_total)"#,
    "quantile by (job) (0.9, rate(req_total[1m]))",
    "topk(2, rate(req_total[1m]))",
    "bottomk by (job) (1, req_total)",
    "req_total > bool on(instance) group_left(node) node_info",
    "up or on(instance) node_info",
    "sum by (s) (tie) / ignoring(s) group_left sum(tie)",
    "stddev_over_time(temp[2m])",
    "stdvar_over_time(temp[2m])",
    "changes(up[2m])",
    "resets(req_total[3m])",
    "predict_linear(req_total[2m], 3600)",
    "histogram_quantile(0.99, sum by (le) (rate(lat_bucket[2m])))",
    r#"label_replace(req_total, "x", "$2-$1", "instance", "(.)()")"#,
    "timestamp(up)",
    "time() - timestamp(temp)",
    "vector(time())",
    "scalar(sum(up))",
    "abs(delta(temp[2m]))",
    "-tie ^ 2",
    "tie % 0.3",
    "tie atan2 2",
    "avg_over_time(req_total[90s])",
    "increase(req_total[45s])",
    "irate(req_total[45s])",
    "count by (job) (req_total) * on(job) group_right sum by (job, instance) (req_total)",
    "req_total unless on(job) up",
    "absent(up{instance=\"c\"})",
    "last_over_time(up[1m])",
    "present_over_time(up[1m])",
    "sgn(temp - 22)",
    "min(tie) by (s) == bool max(tie) by (s)",
];
