//! Fixed data for rule tests: a [`Source`] over series given in the test,
//! with Prometheus's instant-selector semantics (newest sample within a
//! 5-minute lookback). It understands plain selectors
//! (`metric{label="v",…}`), which is all the rule kinds ask for.

#![allow(dead_code)]

use osprey_alerts::labels::LabelSet;
use osprey_alerts::matcher::{Matcher, matches_all};
use osprey_alerts::source::{Sample, SeriesPoints, Source, SourceError};

/// Lookback of instant selectors, ms.
pub const LOOKBACK_MS: i64 = 300_000;

/// A series and its points, oldest first.
pub type FixedSeries = (LabelSet, Vec<(i64, f64)>);

/// Series with their points.
#[derive(Default)]
pub struct FixedSource {
    pub series: Vec<FixedSeries>,
}

/// A label set from pairs.
pub fn labels(pairs: &[(&str, &str)]) -> LabelSet {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl FixedSource {
    /// Adds `name{pairs}` with points `(t_ms, v)`.
    pub fn add(&mut self, name: &str, pairs: &[(&str, &str)], points: Vec<(i64, f64)>) {
        let mut l = labels(pairs);
        l.insert("__name__".into(), name.into());
        self.series.push((l, points));
    }

    /// Adds a series sampled every `step` ms over `[from, to)` by `f(t)`.
    pub fn add_fn(
        &mut self,
        name: &str,
        pairs: &[(&str, &str)],
        from: i64,
        to: i64,
        step: i64,
        f: impl Fn(i64) -> f64,
    ) {
        let points = (from..to)
            .step_by(step as usize)
            .map(|t| (t, f(t)))
            .collect();
        self.add(name, pairs, points);
    }

    fn select(&self, expr: &str) -> Result<Vec<&FixedSeries>, SourceError> {
        let (name, rest) = match expr.find('{') {
            Some(i) => (&expr[..i], &expr[i..]),
            None => (expr, ""),
        };
        let mut matchers = Vec::new();
        if !name.trim().is_empty() {
            matchers.push(Matcher::parse(&format!("__name__={}", name.trim())).unwrap());
        }
        if !rest.is_empty() {
            let inner = rest
                .strip_prefix('{')
                .and_then(|r| r.strip_suffix('}'))
                .ok_or_else(|| SourceError::BadQuery(format!("cannot parse {expr:?}")))?;
            for m in inner.split(',').filter(|m| !m.trim().is_empty()) {
                matchers.push(Matcher::parse(m).map_err(|e| SourceError::BadQuery(e.to_string()))?);
            }
        }
        Ok(self
            .series
            .iter()
            .filter(|(l, _)| matches_all(&matchers, l))
            .collect())
    }

    fn at(points: &[(i64, f64)], t: i64) -> Option<f64> {
        points
            .iter()
            .rev()
            .find(|(pt, _)| *pt <= t)
            .filter(|(pt, _)| t - pt <= LOOKBACK_MS)
            .map(|(_, v)| *v)
    }
}

impl Source for FixedSource {
    fn instant(&self, expr: &str, t_ms: i64) -> Result<Vec<Sample>, SourceError> {
        Ok(self
            .select(expr)?
            .into_iter()
            .filter_map(|(l, p)| {
                Self::at(p, t_ms).map(|value| Sample {
                    labels: l.clone(),
                    value,
                })
            })
            .collect())
    }

    fn range(
        &self,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Vec<SeriesPoints>, SourceError> {
        Ok(self
            .select(expr)?
            .into_iter()
            .filter_map(|(l, p)| {
                let points: Vec<(i64, f64)> = (start_ms..=end_ms)
                    .step_by(step_ms as usize)
                    .filter_map(|t| Self::at(p, t).map(|v| (t, v)))
                    .collect();
                (!points.is_empty()).then(|| SeriesPoints {
                    labels: l.clone(),
                    points,
                })
            })
            .collect())
    }

    fn last_seen(
        &self,
        selector: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<(LabelSet, i64)>, SourceError> {
        Ok(self
            .select(selector)?
            .into_iter()
            .filter_map(|(l, p)| {
                p.iter()
                    .rev()
                    .find(|(t, _)| *t >= start_ms && *t <= end_ms)
                    .map(|(t, _)| (l.clone(), *t))
            })
            .collect())
    }
}
