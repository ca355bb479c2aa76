//! Charts for e-mails: the series of an alert around the time it fired,
//! drawn by a [`ChartRenderer`] the server provides (the dashboard's
//! renderer), from data read through the [`Source`].

use crate::labels::contains_all;
use crate::notify::Notification;
use crate::source::Source;

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartSeries {
    /// Legend text.
    pub name: String,
    /// `(t_ms, value)`, oldest first.
    pub points: Vec<(i64, f64)>,
}

/// What to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartRequest {
    /// Title.
    pub title: String,
    /// Lines.
    pub series: Vec<ChartSeries>,
    /// A horizontal threshold line.
    pub threshold: Option<f64>,
    /// When the alert started firing, ms (a marker).
    pub marker_ms: Option<i64>,
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
}

/// Draws charts as PNG.
pub trait ChartRenderer: Send + Sync {
    /// PNG bytes of the chart.
    fn render_png(&self, request: &ChartRequest) -> Result<Vec<u8>, String>;
}

/// The chart of a notification: the chart query of its first alert over
/// `range_ms` up to `now_ms`, restricted to series of the notified alerts
/// (at most 10 lines). `None` when there is nothing to draw.
pub fn chart_request(
    n: &Notification,
    source: &dyn Source,
    now_ms: i64,
    range_ms: i64,
    width: u32,
    height: u32,
) -> Result<Option<ChartRequest>, String> {
    let Some(first) = n.alerts.first() else {
        return Ok(None);
    };
    if first.chart_query.is_empty() {
        return Ok(None);
    }
    let step = (range_ms / 300).max(1000);
    let series = source
        .range(&first.chart_query, now_ms - range_ms, now_ms, step)
        .map_err(|e| e.to_string())?;
    let wanted: Vec<_> = n
        .alerts
        .iter()
        .map(|a| {
            let mut l = a.labels.clone();
            l.remove(crate::labels::ALERTNAME);
            l
        })
        .collect();
    let lines: Vec<ChartSeries> = series
        .into_iter()
        .filter(|s| {
            let mut l = s.labels.clone();
            l.remove(crate::labels::METRIC_NAME);
            // Rule labels are on the alert but not the series: a series
            // belongs to an alert when all of its labels are the alert's.
            wanted.iter().any(|w| contains_all(w, &l))
        })
        .take(10)
        .map(|s| ChartSeries {
            name: crate::labels::to_selector_string(&s.labels),
            points: s.points,
        })
        .collect();
    if lines.is_empty() {
        return Ok(None);
    }
    Ok(Some(ChartRequest {
        title: format!("{}: {}", first.name(), first.chart_query),
        series: lines,
        threshold: first.chart_threshold,
        marker_ms: first.fired_at,
        width,
        height,
    }))
}
