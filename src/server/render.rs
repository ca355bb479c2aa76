//! `GET /api/v1/render`: a PromQL range query drawn as a PNG or SVG image
//! by [`osprey_dashboard::render`], for e-mails and image links.
//!
//! Parameters: those of [`super::chart_query`] (`query`, `start`, `end`,
//! `step`, `legend`; the width is the image's), plus `width` and `height`
//! (pixels; default 800×300), `format` (`png` or `svg`; default png),
//! `title`, `unit` (e.g. `bytes`, `percent`, `cores`), `threshold`
//! (repeatable, a number: a dashed line), `min`/`max` (y axis bounds).
//! Each series is reduced to one bucket per pixel; a bucket whose minimum
//! and maximum differ is drawn as both, so peaks stay visible.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use osprey_dashboard::render::{ChartSeries, ChartSpec, Format, Threshold, render_chart};

use super::ServerState;
use super::chart_query::{ChartQuery, Downsampled, downsample};
use super::error::ApiError;
use crate::promql::api::Params;

fn bad(name: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("invalid parameter \"{name}\": {why}"))
}

/// The image's look, from request parameters (everything but the query).
#[derive(Debug, Clone, Default)]
pub struct Look {
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// Image format.
    pub format: Format,
    /// Title.
    pub title: String,
    /// Unit of the values.
    pub unit: String,
    /// Threshold lines.
    pub thresholds: Vec<f64>,
    /// Y axis minimum.
    pub min: Option<f64>,
    /// Y axis maximum.
    pub max: Option<f64>,
}

impl Look {
    /// Reads `width`, `height`, `format`, `title`, `unit`, `threshold`,
    /// `min`, `max`.
    pub fn from_params(params: &Params) -> Result<Self, ApiError> {
        let side = |name: &str, default: u32| -> Result<u32, ApiError> {
            match params.get(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| {
                        (osprey_dashboard::render::MIN_SIDE..=osprey_dashboard::render::MAX_SIDE)
                            .contains(n)
                    })
                    .ok_or_else(|| {
                        bad(
                            name,
                            format!(
                                "{v:?} is not a size in {}..={} pixels",
                                osprey_dashboard::render::MIN_SIDE,
                                osprey_dashboard::render::MAX_SIDE
                            ),
                        )
                    }),
            }
        };
        let number = |name: &str, v: &str| -> Result<f64, ApiError> {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| bad(name, format!("{v:?} is not a number")))
        };
        let format = match params.get("format").unwrap_or("png") {
            "png" => Format::Png,
            "svg" => Format::Svg,
            other => return Err(bad("format", format!("{other:?}; use png or svg"))),
        };
        Ok(Self {
            width: side("width", 800)?,
            height: side("height", 300)?,
            format,
            title: params.get("title").unwrap_or("").to_string(),
            unit: params.get("unit").unwrap_or("").to_string(),
            thresholds: params
                .all("threshold")
                .into_iter()
                .map(|v| number("threshold", v))
                .collect::<Result<_, _>>()?,
            min: params.get("min").map(|v| number("min", v)).transpose()?,
            max: params.get("max").map(|v| number("max", v)).transpose()?,
        })
    }
}

/// Turns buckets into line points: one point for a bucket with one value,
/// its minimum and maximum for one with a spread, NaN for an empty bucket
/// (which breaks the line).
pub fn chart_series(data: &Downsampled) -> Vec<ChartSeries> {
    let half = data.bucket_ms / 2;
    data.series
        .iter()
        .map(|s| {
            let mut points = Vec::with_capacity(data.t.len() * 2);
            for (i, &t) in data.t.iter().enumerate() {
                match (s.min[i], s.max[i]) {
                    (Some(lo), Some(hi)) if lo != hi => {
                        points.push((t, lo));
                        points.push((t + half, hi));
                    }
                    (Some(v), _) => points.push((t, v)),
                    _ => points.push((t, f64::NAN)),
                }
            }
            ChartSeries {
                name: s.name.clone(),
                points,
            }
        })
        .collect()
}

/// Renders `data` with `look` into an HTTP response with the image.
pub fn image_response(data: &Downsampled, look: &Look) -> Result<Response, ApiError> {
    let spec = ChartSpec {
        title: look.title.clone(),
        series: chart_series(data),
        width: look.width,
        height: look.height,
        format: look.format,
        unit: look.unit.clone(),
        start_ms: Some(data.start),
        end_ms: Some(data.end),
        y_min: look.min,
        y_max: look.max,
        thresholds: look
            .thresholds
            .iter()
            .map(|&value| Threshold { value, color: None })
            .collect(),
        band: None,
    };
    let bytes = render_chart(&spec).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, look.format.content_type()),
            (header::CACHE_CONTROL, "no-store"),
        ],
        bytes,
    )
        .into_response())
}

/// `GET /api/v1/render`.
pub async fn render(
    State(state): State<Arc<ServerState>>,
    scope: super::auth::Scope,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::from_request(raw.as_deref(), &Default::default(), &[]);
    let look = Look::from_params(&params)?;
    // The image's plot is a little narrower than the image; a bucket per
    // image pixel is close enough and keeps the rule simple.
    let mut q = ChartQuery::from_params(|k| params.get(k).map(str::to_string), look.width)?;
    q.width = look.width;
    let series = q.evaluate(&state, &scope).await?;
    let data = downsample(&q, &series);
    // Rendering a large PNG takes milliseconds: off the async threads.
    tokio::task::spawn_blocking(move || image_response(&data, &look))
        .await
        .map_err(|e| ApiError::internal(format!("rendering failed: {e}")))?
}
