//! Each rule kind on fixed data, through the engine: when alerts become
//! pending, fire and resolve; triggers, scopes, hysteresis, absence,
//! flapping, rule files and templating.

mod common;

use std::time::Duration;

use common::{FixedSource, labels};
use osprey_alerts::alert::AlertState;
use osprey_alerts::engine::{Engine, EngineConfig, FlapConfig, Transition};
use osprey_alerts::rule::RuleSpec;
use osprey_alerts::rule::file::parse_rule_file;
use serde_json::json;

const T0: i64 = 1_700_000_000_000;
const S: i64 = 1000;

fn rule(v: serde_json::Value) -> RuleSpec {
    let spec: RuleSpec = serde_json::from_value(v).expect("valid rule JSON");
    spec.validate(None).expect("valid rule");
    spec
}

fn engine(rules: Vec<RuleSpec>, flap: FlapConfig) -> Engine {
    let mut e = Engine::new(EngineConfig {
        default_interval: Duration::from_secs(10),
        resolved_retention: Duration::from_secs(600),
        flap,
        external_url: "http://osprey.test".into(),
        external_labels: Default::default(),
    });
    for r in rules {
        e.set_rule(r, T0);
    }
    e
}

fn no_damping() -> FlapConfig {
    FlapConfig {
        max_flips: 0,
        ..FlapConfig::default()
    }
}

/// Evaluates every `step` from `from` to `to` (inclusive).
fn run(e: &mut Engine, src: &FixedSource, from: i64, to: i64, step: i64) -> Vec<Transition> {
    let mut out = Vec::new();
    let mut t = from;
    while t <= to {
        out.extend(e.evaluate_due(src, t));
        t += step;
    }
    out
}

fn states_of(ts: &[Transition], pod: &str) -> Vec<(i64, Option<AlertState>)> {
    ts.iter()
        .filter(|t| t.labels.get("pod").map(String::as_str) == Some(pod))
        .map(|t| ((t.at_ms - T0) / S, t.to))
        .collect()
}

fn cpu_rule(extra: serde_json::Value) -> RuleSpec {
    let mut v = json!({
        "id": "cpu", "name": "HighCPU",
        "condition": {"kind": "threshold", "query": "cpu", "op": "above", "threshold": 0.8},
        "for": "30s",
        "labels": {"severity": "page"},
        "annotations": {"summary": "{{ $labels.pod }} at {{ $value }}"}
    });
    for (k, x) in extra.as_object().unwrap() {
        if k == "condition" {
            for (ck, cv) in x.as_object().unwrap() {
                v["condition"][ck] = cv.clone();
            }
        } else {
            v[k] = x.clone();
        }
    }
    rule(v)
}

#[test]
fn threshold_pends_for_its_duration_then_fires_and_resolves() {
    let mut src = FixedSource::default();
    // Above 0.8 from t=60s to t=150s.
    src.add_fn("cpu", &[("pod", "a")], T0, T0 + 300 * S, 10 * S, |t| {
        if (T0 + 60 * S..T0 + 150 * S).contains(&t) {
            0.95
        } else {
            0.2
        }
    });
    src.add_fn("cpu", &[("pod", "b")], T0, T0 + 300 * S, 10 * S, |_| 0.1);
    let mut e = engine(vec![cpu_rule(json!({}))], no_damping());
    let ts = run(&mut e, &src, T0, T0 + 200 * S, 10 * S);
    assert_eq!(
        states_of(&ts, "a"),
        vec![
            (60, Some(AlertState::Pending)),
            (90, Some(AlertState::Firing)),
            (150, Some(AlertState::Resolved)),
        ]
    );
    assert!(states_of(&ts, "b").is_empty(), "b never violates");
    let a = e.alerts().next().unwrap();
    assert_eq!(a.labels.get("alertname").unwrap(), "HighCPU");
    assert_eq!(a.labels.get("severity").unwrap(), "page");
    assert!(!a.labels.contains_key("__name__"));
    assert_eq!(a.annotations.get("summary").unwrap(), "a at 0.95");
    assert_eq!(a.fired_at, Some(T0 + 90 * S));
    assert!(
        a.generator_url
            .starts_with("http://osprey.test/graph?g0.expr=cpu")
    );
}

#[test]
fn one_false_evaluation_restarts_the_for_clock() {
    let mut src = FixedSource::default();
    src.add_fn("cpu", &[("pod", "a")], T0, T0 + 300 * S, 10 * S, |t| {
        if t == T0 + 20 * S { 0.5 } else { 0.9 }
    });
    let mut e = engine(vec![cpu_rule(json!({}))], no_damping());
    let ts = run(&mut e, &src, T0, T0 + 120 * S, 10 * S);
    assert_eq!(
        states_of(&ts, "a"),
        vec![
            (0, Some(AlertState::Pending)),
            (20, None),
            (30, Some(AlertState::Pending)),
            (60, Some(AlertState::Firing)),
        ]
    );
}

#[test]
fn scope_and_triggers_decide_which_members_count() {
    let mut src = FixedSource::default();
    for (pod, ns, v) in [
        ("a", "prod", 0.9),
        ("b", "prod", 0.9),
        ("c", "prod", 0.1),
        ("d", "dev", 0.99),
    ] {
        src.add_fn(
            "cpu",
            &[("pod", pod), ("ns", ns)],
            T0,
            T0 + 60 * S,
            10 * S,
            move |_| v,
        );
    }
    let fired = |trigger: serde_json::Value| {
        let r = cpu_rule(
            json!({"for": "0s", "condition": {"scope": ["ns=\"prod\""], "trigger": trigger}}),
        );
        let mut e = engine(vec![r], no_damping());
        e.evaluate_due(&src, T0 + 10 * S);
        let mut pods: Vec<String> = e
            .alerts()
            .filter(|a| a.state == AlertState::Firing)
            .map(|a| a.labels["pod"].clone())
            .collect();
        pods.sort();
        pods
    };
    assert_eq!(fired(json!("any")), vec!["a", "b"], "d is out of scope");
    assert!(fired(json!("all")).is_empty(), "c is fine");
    assert_eq!(fired(json!({"at_least": 2})), vec!["a", "b"]);
    assert!(fired(json!({"at_least": 3})).is_empty());
    assert_eq!(fired(json!({"percent": 66})), vec!["a", "b"]);
    assert!(fired(json!({"percent": 67})).is_empty());
}

#[test]
fn clear_threshold_gives_hysteresis() {
    let mut src = FixedSource::default();
    // 0.9 trips; 0.75 is between clear (0.7) and trip (0.8); 0.6 clears.
    let values = [0.9, 0.75, 0.75, 0.6, 0.75];
    src.add(
        "cpu",
        &[("pod", "a")],
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (T0 + i as i64 * 10 * S, *v))
            .collect(),
    );
    let r = cpu_rule(json!({"for": "0s", "condition": {"clear_threshold": 0.7}}));
    let mut e = engine(vec![r], no_damping());
    let ts = run(&mut e, &src, T0, T0 + 40 * S, 10 * S);
    assert_eq!(
        states_of(&ts, "a"),
        vec![
            (0, Some(AlertState::Firing)),
            (30, Some(AlertState::Resolved))
        ],
        "stays firing at 0.75, resolves at 0.6, does not re-trip at 0.75"
    );
    let bad: Result<RuleSpec, _> = serde_json::from_value(json!({
        "name": "x", "condition": {"kind": "threshold", "query": "cpu", "op": "above", "threshold": 0.8, "clear_threshold": 0.9}
    }));
    assert!(
        bad.unwrap()
            .validate(None)
            .unwrap_err()
            .to_string()
            .contains("clear_threshold")
    );
}

#[test]
fn keep_firing_for_holds_a_firing_alert() {
    let mut src = FixedSource::default();
    src.add_fn("cpu", &[("pod", "a")], T0, T0 + 300 * S, 10 * S, |t| {
        if t < T0 + 30 * S || (T0 + 50 * S..T0 + 60 * S).contains(&t) {
            0.9
        } else {
            0.1
        }
    });
    let r = cpu_rule(json!({"for": "0s", "keep_firing_for": "30s"}));
    let mut e = engine(vec![r], no_damping());
    let ts = run(&mut e, &src, T0, T0 + 150 * S, 10 * S);
    // Clear at 30s and 40s, back at 50s (still firing: no new alert), clear
    // from 60s: resolved 30 s later.
    assert_eq!(
        states_of(&ts, "a"),
        vec![
            (0, Some(AlertState::Firing)),
            (90, Some(AlertState::Resolved))
        ]
    );
}

#[test]
fn rate_of_change_compares_with_the_value_a_window_ago() {
    let mut src = FixedSource::default();
    src.add_fn("mem", &[("pod", "grow")], T0, T0 + 400 * S, 10 * S, |t| {
        100.0 + ((t - T0) / S) as f64
    });
    src.add_fn("mem", &[("pod", "flat")], T0, T0 + 400 * S, 10 * S, |_| {
        100.0
    });
    src.add_fn("mem", &[("pod", "drop")], T0, T0 + 400 * S, 10 * S, |t| {
        400.0 - ((t - T0) / S) as f64
    });
    let up = rule(
        json!({"id": "up", "name": "MemGrowing", "condition": {"kind": "rate_of_change", "query": "mem", "window": "100s", "op": "above", "percent": 50}}),
    );
    let down = rule(
        json!({"id": "down", "name": "MemFalling", "condition": {"kind": "rate_of_change", "query": "mem", "window": "100s", "op": "below", "percent": -30}}),
    );
    let mut e = engine(vec![up, down], no_damping());
    // At 200 s: grow 300 vs 200 → +50 % (not above); at 210 s: 310/210 → +47.6 %.
    // At 140 s: 240/140 → +71 %.
    e.evaluate_due(&src, T0 + 140 * S);
    let firing: Vec<(String, String, f64)> = e
        .alerts()
        .map(|a| (a.name().to_string(), a.labels["pod"].clone(), a.value))
        .collect();
    assert_eq!(firing.len(), 1, "{firing:?}");
    assert_eq!(firing[0].0, "MemGrowing");
    assert_eq!(firing[0].1, "grow");
    assert!((firing[0].2 - 71.428).abs() < 0.01, "{firing:?}");
    // 380 s: drop = 20 vs 120 → −83 %.
    e.evaluate_due(&src, T0 + 380 * S);
    let names: Vec<String> = e
        .alerts()
        .filter(|a| a.state == AlertState::Firing)
        .map(|a| format!("{}/{}", a.name(), a.labels["pod"]))
        .collect();
    assert_eq!(names, vec!["MemFalling/drop"]);
}

#[test]
fn absence_fires_when_a_series_stops_and_resolves_when_it_returns() {
    let mut src = FixedSource::default();
    // "gone" reports until 100 s, then again from 300 s; "steady" always.
    src.add_fn("up", &[("pod", "gone")], T0, T0 + 600 * S, 10 * S, |_| 1.0);
    src.series[0]
        .1
        .retain(|(t, _)| *t < T0 + 100 * S || *t >= T0 + 300 * S);
    src.add_fn("up", &[("pod", "steady")], T0, T0 + 600 * S, 10 * S, |_| {
        1.0
    });
    let r = rule(
        json!({"id": "abs", "name": "TargetMissing", "condition": {"kind": "absence", "query": "up", "duration": "60s"}}),
    );
    let mut e = engine(vec![r], no_damping());
    let ts = run(&mut e, &src, T0, T0 + 400 * S, 10 * S);
    assert_eq!(
        states_of(&ts, "gone"),
        vec![
            (150, Some(AlertState::Firing)),
            (300, Some(AlertState::Resolved))
        ],
        "last sample at 90 s; absent from 150 s (a 5-minute lookback would have hidden it until 390 s)"
    );
    assert!(states_of(&ts, "steady").is_empty());
    let value_at_200 = {
        let mut e2 = engine(
            vec![rule(
                json!({"id": "abs", "name": "TargetMissing", "condition": {"kind": "absence", "query": "up", "duration": "60s"}}),
            )],
            no_damping(),
        );
        e2.evaluate_due(&src, T0 + 200 * S);
        e2.alerts().next().unwrap().value
    };
    assert_eq!(value_at_200, 110.0, "seconds since the last sample");
}

#[test]
fn group_aggregate_reduces_per_group() {
    let mut src = FixedSource::default();
    for (node, pod, v) in [
        ("n1", "a", 0.9),
        ("n1", "b", 0.8),
        ("n2", "c", 0.9),
        ("n2", "d", 0.1),
    ] {
        src.add_fn(
            "cpu",
            &[("node", node), ("pod", pod)],
            T0,
            T0 + 60 * S,
            10 * S,
            move |_| v,
        );
    }
    let check = |agg: &str, threshold: f64| {
        let r = rule(
            json!({"id": "g", "name": "NodeHot", "condition": {"kind": "group_aggregate", "query": "cpu", "aggregation": agg, "by": ["node"], "op": "above", "threshold": threshold}}),
        );
        let mut e = engine(vec![r], no_damping());
        e.evaluate_due(&src, T0 + 10 * S);
        let mut v: Vec<(String, f64)> = e
            .alerts()
            .map(|a| (a.labels["node"].clone(), (a.value * 100.0).round() / 100.0))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        assert!(
            e.alerts().all(|a| !a.labels.contains_key("pod")),
            "one alert per group"
        );
        v
    };
    assert_eq!(check("avg", 0.6), vec![("n1".to_string(), 0.85)]);
    assert_eq!(check("sum", 1.5), vec![("n1".to_string(), 1.7)]);
    assert_eq!(
        check("max", 0.85),
        vec![("n1".to_string(), 0.9), ("n2".to_string(), 0.9)]
    );
    assert_eq!(check("min", 0.5), vec![("n1".to_string(), 0.8)]);
    assert_eq!(
        check("count", 1.5),
        vec![("n1".to_string(), 2.0), ("n2".to_string(), 2.0)]
    );
}

/// A condition true at every other evaluation.
fn flapping_source() -> FixedSource {
    let mut src = FixedSource::default();
    src.add_fn("cpu", &[("pod", "a")], T0, T0 + 1200 * S, 10 * S, |t| {
        if ((t - T0) / (10 * S)) % 2 == 0 {
            0.9
        } else {
            0.1
        }
    });
    src
}

#[test]
fn flapping_is_damped() {
    let r = || cpu_rule(json!({"for": "0s"}));
    let src = flapping_source();
    let mut undamped = engine(vec![r()], no_damping());
    let plain = run(&mut undamped, &src, T0, T0 + 600 * S, 10 * S);
    let fires = |ts: &[Transition]| {
        ts.iter()
            .filter(|t| t.to == Some(AlertState::Firing))
            .count()
    };
    assert_eq!(
        fires(&plain),
        31,
        "without damping every other evaluation fires"
    );

    let mut damped = engine(
        vec![r()],
        FlapConfig {
            window: Duration::from_secs(120),
            max_flips: 4,
            hold: Duration::from_secs(60),
        },
    );
    let ts = run(&mut damped, &src, T0, T0 + 600 * S, 10 * S);
    assert_eq!(
        fires(&ts),
        3,
        "after 4 flips the alert holds firing until the condition is clear for 60 s: {:?}",
        states_of(&ts, "a")
    );
    assert!(
        damped
            .alerts()
            .any(|a| a.flapping || a.state == AlertState::Firing)
    );
    // Once the condition really stops, the alert resolves after the hold.
    let mut calm = flapping_source();
    calm.series[0].1.retain(|(t, _)| *t < T0 + 200 * S);
    calm.series[0]
        .1
        .extend((200..800).step_by(10).map(|s| (T0 + s * S, 0.1)));
    let mut e = engine(
        vec![r()],
        FlapConfig {
            window: Duration::from_secs(120),
            max_flips: 4,
            hold: Duration::from_secs(60),
        },
    );
    let ts = run(&mut e, &calm, T0, T0 + 400 * S, 10 * S);
    let last = states_of(&ts, "a").last().copied().unwrap();
    assert_eq!(last.1, Some(AlertState::Resolved));
    assert!(
        last.0 >= 250,
        "resolved only after the hold: {:?}",
        states_of(&ts, "a")
    );
}

#[test]
fn prometheus_rule_files_load_with_templates() {
    let text = r#"
groups:
  - name: node
    interval: 15s
    labels:
      team: infra
    rules:
      - alert: HighCPU
        expr: cpu > 0.8
        for: 1m
        keep_firing_for: 30s
        labels:
          severity: "{{ if true }}page{{ end }}"
        annotations:
          summary: "{{ $labels.pod }} is at {{ $value | humanizePercentage }}"
"#;
    let err = parse_rule_file(text, "node").unwrap_err().to_string();
    assert!(err.contains("HighCPU") || err.contains("rule 1"), "{err}");
    assert!(
        err.contains("unsupported"),
        "templates we cannot render are refused: {err}"
    );

    let ok = text.replace("\"{{ if true }}page{{ end }}\"", "page");
    let rules = parse_rule_file(&ok, "node").unwrap();
    assert_eq!(rules.len(), 1);
    let r = &rules[0];
    assert_eq!(r.name, "HighCPU");
    assert_eq!(r.for_, Duration::from_secs(60));
    assert_eq!(r.keep_firing_for, Duration::from_secs(30));
    assert_eq!(r.interval, Some(Duration::from_secs(15)));
    assert_eq!(r.labels["team"], "infra");
    assert_eq!(r.group, "node");

    // Evaluated as PromQL: the fixed source knows only selectors, so the
    // expression here is one.
    let mut r = r.clone();
    r.condition = serde_json::from_value(json!({"kind": "promql", "expr": "cpu"})).unwrap();
    r.for_ = Duration::ZERO;
    let mut src = FixedSource::default();
    src.add_fn("cpu", &[("pod", "a")], T0, T0 + 60 * S, 10 * S, |_| 0.875);
    let mut e = engine(vec![r], no_damping());
    e.evaluate_due(&src, T0 + 10 * S);
    let a = e.alerts().next().unwrap();
    assert_eq!(a.annotations["summary"], "a is at 87.5%");
    assert_eq!(a.labels["team"], "infra");

    let rec = "groups:\n  - name: g\n    rules:\n      - record: x\n        expr: up\n";
    assert!(
        parse_rule_file(rec, "f")
            .unwrap_err()
            .to_string()
            .contains("recording rule")
    );
    assert!(parse_rule_file("groups: [", "f").is_err());
    let bad_for =
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        for: 5\n";
    assert!(
        parse_rule_file(bad_for, "f")
            .unwrap_err()
            .to_string()
            .contains("for")
    );
}

#[test]
fn promql_rules_refuse_duplicate_label_sets() {
    let mut src = FixedSource::default();
    src.add_fn("cpu", &[("pod", "a")], T0, T0 + 60 * S, 10 * S, |_| 1.0);
    src.add_fn("mem", &[("pod", "a")], T0, T0 + 60 * S, 10 * S, |_| 1.0);
    // `{pod="a"}` selects both; without __name__ they collide.
    let r = rule(
        json!({"id": "p", "name": "Dup", "condition": {"kind": "promql", "expr": "{pod=\"a\"}"}}),
    );
    let mut e = engine(vec![r], no_damping());
    e.evaluate_due(&src, T0 + 10 * S);
    let rt = e.rule("p").unwrap();
    assert!(
        rt.last_error
            .as_deref()
            .unwrap_or("")
            .contains("same labelset")
    );
    assert_eq!(e.alerts().count(), 0);
}

#[test]
fn baseline_learns_a_series_and_flags_a_spike() {
    let mut src = FixedSource::default();
    let step = 60 * S;
    let noise = |t: i64| ((t / step) % 7) as f64 * 0.01;
    // Calm around 1.0 for 3 hours, a spike to 5 at 3h+30m for 10 minutes.
    let spike = T0 + 3 * 3600 * S + 30 * 60 * S;
    src.add_fn(
        "lat",
        &[("pod", "a")],
        T0,
        T0 + 4 * 3600 * S,
        step,
        move |t| {
            if (spike..spike + 10 * step).contains(&t) {
                5.0
            } else {
                1.0 + noise(t)
            }
        },
    );
    src.add_fn(
        "lat",
        &[("pod", "b")],
        T0,
        T0 + 4 * 3600 * S,
        step,
        move |t| 1.0 + noise(t),
    );
    let r = rule(json!({
        "id": "b", "name": "LatencyUnusual", "interval": "60s",
        "condition": {"kind": "baseline", "query": "lat", "step": "60s", "history": "3h",
                      "detector": {"season": "none", "warmup_points": 30, "sensitivity": 4.0,
                                   "hysteresis": {"exit_points": 5}}}
    }));
    let mut e = engine(vec![r], no_damping());
    let ts = run(
        &mut e,
        &src,
        T0 + 3 * 3600 * S,
        T0 + 4 * 3600 * S - step,
        step,
    );
    let a = states_of(&ts, "a");
    assert!(!a.is_empty(), "the spike is flagged");
    let fired = a
        .iter()
        .find(|(_, s)| *s == Some(AlertState::Firing))
        .unwrap()
        .0;
    let spike_s = (spike - T0) / S;
    assert!(
        (spike_s..spike_s + 300).contains(&fired),
        "fired at {fired}, spike at {spike_s}"
    );
    assert!(
        a.iter().any(|(_, s)| *s == Some(AlertState::Resolved)),
        "resolves after the spike: {a:?}"
    );
    assert!(
        states_of(&ts, "b").is_empty(),
        "the calm series never alerts"
    );
    assert!(
        !e.rule("b").unwrap().memory.is_empty(),
        "detectors are kept"
    );
    // Memory round-trips through JSON (it is persisted).
    let m = e.memories();
    let back: Vec<(String, osprey_alerts::rule::RuleMemory)> =
        serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
    assert_eq!(back, m);
}

#[test]
fn host_comparison_flags_the_host_unlike_its_peers() {
    let mut src = FixedSource::default();
    let step = 10 * S;
    for i in 0..6 {
        let node = format!("n{i}");
        src.add_fn(
            "load",
            &[("node", &node), ("cluster", "c1")],
            T0,
            T0 + 1200 * S,
            step,
            move |t| {
                let base = 1.0 + 0.02 * i as f64 + 0.01 * (((t / step) + i) % 3) as f64;
                if i == 4 && t >= T0 + 300 * S {
                    base * 3.0
                } else {
                    base
                }
            },
        );
    }
    // A cluster of only 3: too small to compare.
    for i in 0..3 {
        let node = format!("m{i}");
        src.add_fn(
            "load",
            &[("node", &node), ("cluster", "c2")],
            T0,
            T0 + 1200 * S,
            step,
            move |_| if i == 0 { 9.0 } else { 1.0 },
        );
    }
    let r = rule(json!({
        "id": "hc", "name": "NodeUnlikePeers",
        "condition": {"kind": "host_comparison", "query": "load", "group_by": ["cluster"], "step": "10s",
                      "detector": {"min_group": 5, "window_ms": 300000, "lookback_ms": 30000, "fraction_of_window": 0.7}}
    }));
    let mut e = engine(vec![r.clone()], no_damping());
    e.evaluate_due(&src, T0 + 280 * S);
    assert_eq!(
        e.alerts().count(),
        0,
        "before the divergence nobody is flagged"
    );
    let mut e = engine(vec![r], no_damping());
    e.evaluate_due(&src, T0 + 800 * S);
    let flagged: Vec<String> = e.alerts().map(|a| a.labels["node"].clone()).collect();
    assert_eq!(flagged, vec!["n4"]);
    let bad = serde_json::from_value::<RuleSpec>(json!({"name": "x", "condition": {"kind": "host_comparison", "query": "load", "detector": {"min_group": 2}}})).unwrap();
    assert!(
        bad.validate(None)
            .unwrap_err()
            .to_string()
            .contains("min_group")
    );
}

#[test]
fn invalid_rules_name_the_problem() {
    let cases = [
        (
            json!({"condition": {"kind": "threshold", "query": "x", "op": "above", "threshold": 1}}),
            "name",
        ),
        (
            json!({"name": "a", "condition": {"kind": "threshold", "query": "", "op": "above", "threshold": 1}}),
            "query",
        ),
        (
            json!({"name": "a", "condition": {"kind": "threshold", "query": "x", "op": "above", "threshold": 1, "trigger": {"percent": 150}}}),
            "percent",
        ),
        (
            json!({"name": "a", "condition": {"kind": "absence", "query": "x", "duration": "10m", "lookback": "5m"}}),
            "lookback",
        ),
        (
            json!({"name": "a", "id": "a b", "condition": {"kind": "promql", "expr": "x"}}),
            "id",
        ),
        (
            json!({"name": "a", "annotations": {"s": "{{ $value "}, "condition": {"kind": "promql", "expr": "x"}}),
            "template",
        ),
    ];
    for (v, word) in cases {
        let msg = match serde_json::from_value::<RuleSpec>(v.clone()) {
            Err(e) => e.to_string(),
            Ok(r) => r.validate(None).unwrap_err().to_string(),
        };
        assert!(msg.contains(word), "{v} → {msg}");
    }
    let unknown =
        serde_json::from_value::<RuleSpec>(json!({"name": "a", "condition": {"kind": "magic"}}));
    assert!(unknown.unwrap_err().to_string().contains("magic"));
    let _ = labels(&[]);
}
