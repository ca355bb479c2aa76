//! Server-side chart rendering: time series to a PNG or SVG image, for
//! alert e-mails and for people who want an image link
//! (`GET /api/v1/render`). Pure: no I/O, no system font libraries — the
//! text is drawn with `ab_glyph` from DejaVu Sans embedded in the binary
//! (the `dejavu` crate; DejaVu fonts are under the Bitstream Vera / Arev
//! free licence).
//!
//! ```
//! use osprey_dashboard::render::{render_chart, ChartSeries, ChartSpec, Format};
//! let spec = ChartSpec {
//!     title: "CPU".into(),
//!     series: vec![ChartSeries { name: "a".into(), points: vec![(0, 1.0), (60_000, 2.0)] }],
//!     format: Format::Svg,
//!     ..ChartSpec::default()
//! };
//! let svg = render_chart(&spec).unwrap();
//! assert!(svg.starts_with(b"<svg"));
//! ```

use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::units::format_value;

/// Largest width or height accepted, pixels.
pub const MAX_SIDE: u32 = 4096;
/// Smallest width or height accepted, pixels.
pub const MIN_SIDE: u32 = 64;
/// Most legend entries drawn; the rest are summarised as "… N more".
pub const MAX_LEGEND: usize = 12;

/// The series colours, in order (Grafana's classic palette, which users
/// know). A series takes `PALETTE[i % PALETTE.len()]`.
pub const PALETTE: [(u8, u8, u8); 10] = [
    (0x7e, 0xb2, 0x6d),
    (0xea, 0xb8, 0x39),
    (0x6e, 0xd0, 0xe0),
    (0xef, 0x84, 0x3c),
    (0xe2, 0x4d, 0x42),
    (0x1f, 0x78, 0xc1),
    (0xba, 0x43, 0xa9),
    (0x70, 0x5d, 0xa0),
    (0x50, 0x86, 0x42),
    (0xcc, 0xa3, 0x00),
];

/// The colour of threshold lines when none is given.
pub const THRESHOLD_COLOR: (u8, u8, u8) = (0xd4, 0x2a, 0x2a);

/// The image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// PNG, RGB 8 bit.
    #[default]
    Png,
    /// SVG 1.1 text.
    Svg,
}

impl Format {
    /// The HTTP content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Png => "image/png",
            Format::Svg => "image/svg+xml",
        }
    }
}

/// One line of the chart.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChartSeries {
    /// The legend text.
    pub name: String,
    /// `(milliseconds since the epoch, value)`, in time order. NaN values
    /// (gaps, staleness markers) break the line.
    pub points: Vec<(i64, f64)>,
}

/// A horizontal line at a value (e.g. an alert threshold).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Threshold {
    /// Where the line is drawn.
    pub value: f64,
    /// `#rrggbb`; [`THRESHOLD_COLOR`] when absent or invalid.
    #[serde(default)]
    pub color: Option<String>,
}

/// A shaded horizontal band between two values (e.g. a baseline's
/// expected range).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Band {
    /// Lower edge.
    pub from: f64,
    /// Upper edge.
    pub to: f64,
    /// `#rrggbb`; a light blue when absent or invalid.
    #[serde(default)]
    pub color: Option<String>,
}

/// What to draw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChartSpec {
    /// Drawn above the plot; empty for none.
    pub title: String,
    /// The lines.
    pub series: Vec<ChartSeries>,
    /// Image width, pixels ([`MIN_SIDE`]..=[`MAX_SIDE`]).
    pub width: u32,
    /// Image height, pixels ([`MIN_SIDE`]..=[`MAX_SIDE`]).
    pub height: u32,
    /// PNG or SVG.
    pub format: Format,
    /// Unit of the values, for the y axis labels (see [`format_value`]).
    pub unit: String,
    /// Time axis start, ms; the earliest point when absent.
    pub start_ms: Option<i64>,
    /// Time axis end, ms; the latest point when absent.
    pub end_ms: Option<i64>,
    /// Y axis minimum; from the data (and 0 when all values are positive)
    /// when absent.
    pub y_min: Option<f64>,
    /// Y axis maximum; from the data when absent.
    pub y_max: Option<f64>,
    /// Horizontal threshold lines.
    pub thresholds: Vec<Threshold>,
    /// An optional shaded band.
    pub band: Option<Band>,
}

impl Default for ChartSpec {
    fn default() -> Self {
        Self {
            title: String::new(),
            series: Vec::new(),
            width: 800,
            height: 300,
            format: Format::Png,
            unit: String::new(),
            start_ms: None,
            end_ms: None,
            y_min: None,
            y_max: None,
            thresholds: Vec::new(),
            band: None,
        }
    }
}

/// Why a chart could not be rendered.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RenderError {
    /// Width or height out of range.
    #[error("image size {width}x{height} is out of range ({MIN_SIDE}..={MAX_SIDE} per side)")]
    Size {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
    },
    /// The time range is empty or reversed.
    #[error("the time range is empty: end {end} is not after start {start}")]
    TimeRange {
        /// Start, ms.
        start: i64,
        /// End, ms.
        end: i64,
    },
    /// The drawing backend failed (should not happen for in-memory images).
    #[error("drawing failed: {0}")]
    Draw(String),
    /// PNG encoding failed.
    #[error("PNG encoding failed: {0}")]
    Encode(String),
}

static FONT: Once = Once::new();

/// Registers the embedded font as plotters' `sans-serif` (once per process).
fn register_font() {
    FONT.call_once(|| {
        // The font is a valid TTF shipped by the crate: failure is a build defect.
        if plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .is_err()
        {
            panic!("the embedded DejaVu Sans font failed to load");
        }
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
}

/// Renders `spec` to image bytes in its format.
pub fn render_chart(spec: &ChartSpec) -> Result<Vec<u8>, RenderError> {
    let (w, h) = (spec.width, spec.height);
    if !(MIN_SIDE..=MAX_SIDE).contains(&w) || !(MIN_SIDE..=MAX_SIDE).contains(&h) {
        return Err(RenderError::Size {
            width: w,
            height: h,
        });
    }
    register_font();
    let (start, end) = time_range(spec)?;
    match spec.format {
        Format::Png => {
            let mut rgb = vec![0u8; w as usize * h as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
                draw(&root, spec, start, end)?;
                root.present()
                    .map_err(|e| RenderError::Draw(e.to_string()))?;
            }
            encode_png(&rgb, w, h)
        }
        Format::Svg => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
                draw(&root, spec, start, end)?;
                root.present()
                    .map_err(|e| RenderError::Draw(e.to_string()))?;
            }
            Ok(svg.into_bytes())
        }
    }
}

fn time_range(spec: &ChartSpec) -> Result<(i64, i64), RenderError> {
    let first = spec
        .series
        .iter()
        .filter_map(|s| s.points.first())
        .map(|p| p.0)
        .min();
    let last = spec
        .series
        .iter()
        .filter_map(|s| s.points.last())
        .map(|p| p.0)
        .max();
    let start = spec.start_ms.or(first).unwrap_or(0);
    let mut end = spec.end_ms.or(last).unwrap_or(start + 3_600_000);
    if spec.end_ms.is_none() && end <= start {
        // A single point: show a minute around it.
        end = start + 60_000;
    }
    if end <= start {
        return Err(RenderError::TimeRange { start, end });
    }
    Ok((start, end))
}

/// The y range: the data's (with the thresholds and band in view), padded,
/// and from zero when every value is positive.
fn value_range(spec: &ChartSpec) -> (f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    let mut see = |v: f64| {
        if v.is_finite() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    };
    for s in &spec.series {
        for &(_, v) in &s.points {
            see(v);
        }
    }
    for t in &spec.thresholds {
        see(t.value);
    }
    if let Some(b) = &spec.band {
        see(b.from);
        see(b.to);
    }
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if lo > 0.0 {
        lo = 0.0;
    }
    if hi <= lo {
        hi = lo + 1.0;
    } else {
        hi += (hi - lo) * 0.05;
    }
    (spec.y_min.unwrap_or(lo), spec.y_max.unwrap_or(hi))
}

fn parse_color(s: Option<&str>, default: (u8, u8, u8)) -> RGBColor {
    let parsed = s.and_then(|s| {
        let hex = s.strip_prefix('#')?;
        if hex.len() != 6 {
            return None;
        }
        let n = u32::from_str_radix(hex, 16).ok()?;
        Some(((n >> 16) as u8, (n >> 8) as u8, n as u8))
    });
    let (r, g, b) = parsed.unwrap_or(default);
    RGBColor(r, g, b)
}

/// The time label format for a span: clock time within a day, date and
/// time beyond.
fn time_label(t: i64, span_ms: i64) -> String {
    let Some(dt) = chrono::DateTime::from_timestamp_millis(t) else {
        return String::new();
    };
    if span_ms <= 86_400_000 {
        dt.format("%H:%M").to_string()
    } else {
        dt.format("%m-%d %H:%M").to_string()
    }
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    spec: &ChartSpec,
    start: i64,
    end: i64,
) -> Result<(), RenderError> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| RenderError::Draw(e.to_string());
    root.fill(&WHITE).map_err(err)?;
    let (lo, hi) = value_range(spec);
    let span = end - start;
    let small = spec.height < 160 || spec.width < 240;
    let label_px = if small { 10 } else { 12 };
    let mut builder = ChartBuilder::on(root);
    builder
        .margin(8)
        .x_label_area_size(if small { 16 } else { 24 })
        .y_label_area_size(if small { 44 } else { 64 });
    if !spec.title.is_empty() {
        builder.caption(&spec.title, ("sans-serif", if small { 12 } else { 16 }));
    }
    let mut chart = builder
        .build_cartesian_2d(start..end, lo..hi)
        .map_err(err)?;
    let x_fmt = |t: &i64| time_label(*t, span);
    let y_fmt = |v: &f64| format_value(*v, &spec.unit);
    chart
        .configure_mesh()
        .x_labels((spec.width / 110).max(2) as usize)
        .y_labels((spec.height / 40).max(2) as usize)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style(("sans-serif", label_px))
        .light_line_style(RGBColor(0xee, 0xee, 0xee))
        .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
        .draw()
        .map_err(err)?;

    if let Some(band) = &spec.band {
        let color = parse_color(band.color.as_deref(), (0x9f, 0xc5, 0xe8));
        let (a, b) = (band.from.min(band.to), band.from.max(band.to));
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(start, a), (end, b)],
                color.mix(0.35).filled(),
            )))
            .map_err(err)?;
    }

    for (i, s) in spec.series.iter().enumerate() {
        let (r, g, b) = PALETTE[i % PALETTE.len()];
        let color = RGBColor(r, g, b);
        let style = color.stroke_width(2);
        // Split at NaN/±Inf and points outside the axis so gaps stay gaps.
        let mut first_segment = true;
        for segment in s
            .points
            .split(|&(t, v)| !v.is_finite() || t < start || t > end)
        {
            if segment.is_empty() {
                continue;
            }
            let drawn = if segment.len() == 1 {
                // A lone point would be invisible as a line: draw a dot.
                chart
                    .draw_series(std::iter::once(Circle::new(segment[0], 2, color.filled())))
                    .map_err(err)?
            } else {
                chart
                    .draw_series(LineSeries::new(segment.iter().copied(), style))
                    .map_err(err)?
            };
            if first_segment && i < MAX_LEGEND {
                drawn.label(s.name.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
                first_segment = false;
            }
        }
    }

    for t in &spec.thresholds {
        if !t.value.is_finite() {
            continue;
        }
        let color = parse_color(t.color.as_deref(), THRESHOLD_COLOR);
        chart
            .draw_series(DashedLineSeries::new(
                [(start, t.value), (end, t.value)],
                6,
                4,
                color.stroke_width(1),
            ))
            .map_err(err)?;
    }

    let named = spec.series.iter().filter(|s| !s.name.is_empty()).count();
    if named > 0 && !small {
        if spec.series.len() > MAX_LEGEND {
            // The hidden rest is said in one line under the plot's legend.
            let more = format!("… {} more series", spec.series.len() - MAX_LEGEND);
            chart
                .draw_series(std::iter::empty::<Circle<(i64, f64), i32>>())
                .map_err(err)?
                .label(more)
                .legend(|(x, y)| PathElement::new(vec![(x, y)], WHITE));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(0xcc, 0xcc, 0xcc))
            .label_font(("sans-serif", label_px))
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, RenderError> {
    let mut out = Vec::with_capacity(rgb.len() / 8);
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        let mut writer = enc
            .write_header()
            .map_err(|e| RenderError::Encode(e.to_string()))?;
        writer
            .write_image_data(rgb)
            .map_err(|e| RenderError::Encode(e.to_string()))?;
    }
    Ok(out)
}
