//! Joining the lines of one event (a stack trace, a wrapped message) into
//! one entry: a line matching the start pattern begins an event, the lines
//! that do not match are appended to it (joined by `\n`). An event is
//! emitted when the next one starts, when it reaches `max_lines` or
//! `max_bytes`, or when no line was appended for `timeout`.

use std::time::{Duration, Instant};

use regex::Regex;
use serde::{Deserialize, Serialize};

/// Multiline settings of a source (`[agent.logs.multiline]`, or
/// `multiline` inside an `[[agent.logs.files]]` entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MultilineConfig {
    /// Regular expression (Rust `regex` syntax) a line must match to begin
    /// an event, e.g. `^\d{4}-\d{2}-\d{2}` or `^[^\s]`.
    pub start_pattern: String,
    /// Most lines in one event; the event is emitted when it has this many.
    pub max_lines: usize,
    /// Most bytes in one event; a line that would pass this starts a new
    /// event.
    pub max_bytes: usize,
    /// An event with no new line for this long is emitted (e.g. `"1s"`).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for MultilineConfig {
    fn default() -> Self {
        Self {
            start_pattern: r"^\S".into(),
            max_lines: 500,
            max_bytes: 256 << 10,
            timeout: Duration::from_secs(1),
        }
    }
}

/// A compiled [`MultilineConfig`].
#[derive(Debug, Clone)]
pub struct MultilineRule {
    start: Regex,
    max_lines: usize,
    max_bytes: usize,
    timeout: Duration,
}

impl MultilineRule {
    /// Compiles the start pattern.
    pub fn new(config: &MultilineConfig) -> Result<Self, regex::Error> {
        Ok(Self {
            start: Regex::new(&config.start_pattern)?,
            max_lines: config.max_lines.max(1),
            max_bytes: config.max_bytes.max(1),
            timeout: config.timeout,
        })
    }
}

/// One log entry on its way to a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// ns since the epoch.
    pub ts_ns: i64,
    /// The text (valid UTF-8, no trailing newline).
    pub text: String,
    /// Whether the text was cut at the size limit.
    pub truncated: bool,
}

/// An event being assembled; part of a file's checkpointed state so a
/// restart goes on with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// The first line, to which the others are appended.
    pub entry: Entry,
    /// Lines joined so far.
    pub lines: usize,
    /// When the last line was appended (not persisted: a restart gives the
    /// event a fresh timeout).
    #[serde(skip)]
    pub last: Option<Instant>,
}

/// Feeds `entry` through `rule` (none: passed straight on), emitting every
/// completed event to `out`.
pub fn push(
    rule: Option<&MultilineRule>,
    slot: &mut Option<Group>,
    entry: Entry,
    now: Instant,
    out: &mut impl FnMut(Entry),
) {
    let Some(rule) = rule else {
        out(entry);
        return;
    };
    let starts = rule.start.is_match(&entry.text);
    if let Some(group) = slot.as_mut() {
        let fits = group.entry.text.len() + 1 + entry.text.len() <= rule.max_bytes;
        if !starts && fits {
            group.entry.text.push('\n');
            group.entry.text.push_str(&entry.text);
            group.entry.truncated |= entry.truncated;
            group.lines += 1;
            group.last = Some(now);
            if group.lines >= rule.max_lines {
                out(slot.take().expect("group present").entry);
            }
            return;
        }
        out(slot.take().expect("group present").entry);
    }
    if rule.max_lines == 1 {
        out(entry);
        return;
    }
    *slot = Some(Group {
        entry,
        lines: 1,
        last: Some(now),
    });
}

/// Emits the event in `slot` if it waited longer than the rule's timeout
/// (or if it has no timestamp of its last line, i.e. was restored).
pub fn flush_stale(
    rule: Option<&MultilineRule>,
    slot: &mut Option<Group>,
    now: Instant,
    out: &mut impl FnMut(Entry),
) {
    let (Some(rule), Some(group)) = (rule, slot.as_mut()) else {
        return;
    };
    match group.last {
        Some(last) if now.duration_since(last) < rule.timeout => {}
        Some(_) => out(slot.take().expect("group present").entry),
        None => group.last = Some(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(text: &str) -> Entry {
        Entry {
            ts_ns: text.len() as i64,
            text: text.into(),
            truncated: false,
        }
    }

    fn run(config: &MultilineConfig, lines: &[&str]) -> (Vec<String>, Option<Group>) {
        let rule = MultilineRule::new(config).unwrap();
        let mut slot = None;
        let mut out = Vec::new();
        let now = Instant::now();
        for l in lines {
            push(Some(&rule), &mut slot, e(l), now, &mut |x| out.push(x.text));
        }
        (out, slot)
    }

    #[test]
    fn joins_a_java_stack_trace() {
        let config = MultilineConfig {
            start_pattern: r"^\d{4}-".into(),
            ..MultilineConfig::default()
        };
        let (out, slot) = run(
            &config,
            &[
                "2026-11-26 ERROR boom",
                "java.lang.IllegalStateException: x",
                "\tat a.b(C.java:1)",
                "\tat d.e(F.java:2)",
                "2026-11-26 INFO next",
            ],
        );
        assert_eq!(
            out,
            [
                "2026-11-26 ERROR boom\njava.lang.IllegalStateException: x\n\tat a.b(C.java:1)\n\tat d.e(F.java:2)"
            ]
        );
        let g = slot.unwrap();
        assert_eq!(g.entry.text, "2026-11-26 INFO next");
        assert_eq!(g.entry.ts_ns, "2026-11-26 INFO next".len() as i64);
    }

    #[test]
    fn limits_and_timeout_emit_events() {
        let config = MultilineConfig {
            start_pattern: r"^S".into(),
            max_lines: 3,
            max_bytes: 12,
            timeout: Duration::from_millis(10),
        };
        let (out, _) = run(&config, &["S1", " a", " b", " c", "S2", " 1234567", " x"]);
        assert_eq!(out, ["S1\n a\n b", " c", "S2\n 1234567"]);
        let rule = MultilineRule::new(&config).unwrap();
        let mut slot = None;
        let t0 = Instant::now();
        let mut out = Vec::new();
        push(Some(&rule), &mut slot, e("S3"), t0, &mut |x| {
            out.push(x.text)
        });
        flush_stale(
            Some(&rule),
            &mut slot,
            t0 + Duration::from_millis(5),
            &mut |x| out.push(x.text),
        );
        assert!(out.is_empty());
        flush_stale(
            Some(&rule),
            &mut slot,
            t0 + Duration::from_millis(11),
            &mut |x| out.push(x.text),
        );
        assert_eq!(out, ["S3"]);
        assert!(slot.is_none());
    }

    #[test]
    fn without_a_rule_lines_pass_straight() {
        let mut slot = None;
        let mut out = Vec::new();
        push(None, &mut slot, e("x"), Instant::now(), &mut |x| {
            out.push(x.text)
        });
        assert_eq!(out, ["x"]);
    }
}
