//! E-mail charts drawn by the dashboard's renderer
//! ([`osprey_dashboard::render`]).

use osprey_alerts::chart::{ChartRenderer, ChartRequest};
use osprey_dashboard::render::{ChartSeries, ChartSpec, Format, Threshold, render_chart};

/// Renders alert charts as PNG with plotters (embedded font).
pub struct DashboardRenderer;

impl ChartRenderer for DashboardRenderer {
    fn render_png(&self, r: &ChartRequest) -> Result<Vec<u8>, String> {
        let spec = ChartSpec {
            title: r.title.chars().take(120).collect(),
            series: r
                .series
                .iter()
                .map(|s| ChartSeries {
                    name: s.name.clone(),
                    points: s.points.clone(),
                })
                .collect(),
            width: r.width,
            height: r.height,
            format: Format::Png,
            thresholds: r
                .threshold
                .map(|value| Threshold { value, color: None })
                .into_iter()
                .collect(),
            ..ChartSpec::default()
        };
        render_chart(&spec).map_err(|e| e.to_string())
    }
}
