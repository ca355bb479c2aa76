//! The renderer's output decodes, has the requested size and shows the data.

use osprey_dashboard::render::{
    Band, ChartSeries, ChartSpec, Format, PALETTE, RenderError, THRESHOLD_COLOR, Threshold,
    render_chart,
};

const T0: i64 = 1_790_000_000_000;

/// A rising line from 0 to 100 over an hour, one point a minute.
fn ramp(name: &str) -> ChartSeries {
    ChartSeries {
        name: name.into(),
        points: (0..=60)
            .map(|i| (T0 + i * 60_000, i as f64 * 100.0 / 60.0))
            .collect(),
    }
}

fn flat(name: &str, v: f64) -> ChartSeries {
    ChartSeries {
        name: name.into(),
        points: (0..=60).map(|i| (T0 + i * 60_000, v)).collect(),
    }
}

struct Image {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl Image {
    fn decode(bytes: &[u8]) -> Image {
        let decoder = png::Decoder::new(bytes);
        let mut reader = decoder.read_info().expect("a PNG header");
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).expect("PNG image data");
        assert_eq!(info.color_type, png::ColorType::Rgb);
        buf.truncate(info.buffer_size());
        Image {
            width: info.width,
            height: info.height,
            rgb: buf,
        }
    }

    /// Positions of pixels of exactly `c`.
    fn pixels_of(&self, c: (u8, u8, u8)) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        for (i, px) in self.rgb.chunks_exact(3).enumerate() {
            if (px[0], px[1], px[2]) == c {
                out.push((i as u32 % self.width, i as u32 / self.width));
            }
        }
        out
    }
}

#[test]
fn png_decodes_at_the_requested_size_and_draws_each_series() {
    let spec = ChartSpec {
        title: "CPU".into(),
        series: vec![ramp("rising"), flat("flat", 50.0)],
        width: 640,
        height: 320,
        unit: "percent".into(),
        ..ChartSpec::default()
    };
    let bytes = render_chart(&spec).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let img = Image::decode(&bytes);
    assert_eq!((img.width, img.height), (640, 320));

    // The rising series: its leftmost pixels are low on the image (large
    // y), its rightmost high up.
    let rising = img.pixels_of(PALETTE[0]);
    assert!(
        rising.len() > 300,
        "only {} pixels of the first series",
        rising.len()
    );
    let left = rising.iter().min_by_key(|p| p.0).unwrap();
    let right = rising.iter().max_by_key(|p| p.0).unwrap();
    assert!(
        right.0 - left.0 > 400,
        "the line spans the plot: {left:?}..{right:?}"
    );
    assert!(
        left.1 > right.1 + 150,
        "the line rises: {left:?} → {right:?}"
    );

    // The flat series is one horizontal band of pixels, about mid-plot
    // vertically (50 of 0..105), level with the rising line's middle.
    let flat = img.pixels_of(PALETTE[1]);
    assert!(flat.len() > 300);
    let ys: Vec<u32> = flat.iter().map(|p| p.1).collect();
    let (ymin, ymax) = (*ys.iter().min().unwrap(), *ys.iter().max().unwrap());
    // The legend sample is drawn in the series colour too: ignore the
    // upper-left legend box by looking only right of it.
    let line_ys: Vec<u32> = flat.iter().filter(|p| p.0 > 400).map(|p| p.1).collect();
    let (lmin, lmax) = (
        *line_ys.iter().min().unwrap(),
        *line_ys.iter().max().unwrap(),
    );
    assert!(lmax - lmin <= 2, "flat line is level: {lmin}..{lmax}");
    assert!(
        (120..200).contains(&lmin),
        "flat line at mid height, got y={lmin}"
    );
    assert!(ymin < ymax || ymin == lmin);
}

#[test]
fn thresholds_and_bands_are_drawn() {
    let spec = ChartSpec {
        series: vec![flat("x", 10.0)],
        width: 400,
        height: 200,
        thresholds: vec![Threshold {
            value: 80.0,
            color: None,
        }],
        band: Some(Band {
            from: 20.0,
            to: 40.0,
            color: Some("#0000ff".into()),
        }),
        ..ChartSpec::default()
    };
    let img = Image::decode(&render_chart(&spec).unwrap());
    let threshold = img.pixels_of(THRESHOLD_COLOR);
    assert!(threshold.len() > 100, "dashed threshold line drawn");
    let ys: std::collections::BTreeSet<u32> = threshold.iter().map(|p| p.1).collect();
    assert_eq!(ys.len(), 1, "threshold is one horizontal line: {ys:?}");
    // The band is blue mixed into white at 35 %: (166, 166, 255).
    let band = img
        .rgb
        .chunks_exact(3)
        .filter(|p| p[2] == 255 && p[0] < 200 && p[0] == p[1])
        .count();
    assert!(band > 2000, "band filled: {band} pixels");
}

#[test]
fn svg_parses_at_the_requested_size_with_every_point() {
    let spec = ChartSpec {
        title: "Memory".into(),
        series: vec![ramp("a"), flat("b", 30.0)],
        width: 500,
        height: 250,
        format: Format::Svg,
        unit: "bytes".into(),
        ..ChartSpec::default()
    };
    let bytes = render_chart(&spec).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("well-formed SVG");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(root.attribute("width"), Some("500"));
    assert_eq!(root.attribute("height"), Some("250"));
    let color = |c: (u8, u8, u8)| format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2);
    let lines: Vec<_> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "polyline")
        .filter(|n| {
            n.attribute("stroke")
                .is_some_and(|s| s.eq_ignore_ascii_case(&color(PALETTE[0])))
        })
        .collect();
    assert!(!lines.is_empty(), "a polyline in the first series' colour");
    let points = lines[0]
        .attribute("points")
        .unwrap()
        .split_whitespace()
        .count();
    assert_eq!(points, 61, "every sample is a vertex");
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "text")
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect();
    assert!(texts.contains(&"Memory"), "title drawn as text: {texts:?}");
    assert!(
        texts.contains(&"a") && texts.contains(&"b"),
        "legend: {texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.ends_with(" B")),
        "y labels carry the unit: {texts:?}"
    );
}

#[test]
fn gaps_break_the_line() {
    let mut s = ramp("gappy");
    s.points[30].1 = f64::NAN;
    let spec = ChartSpec {
        series: vec![s],
        format: Format::Svg,
        ..ChartSpec::default()
    };
    let text = String::from_utf8(render_chart(&spec).unwrap()).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let segments: Vec<usize> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "polyline")
        .filter(|n| {
            n.attribute("stroke")
                .is_some_and(|s| s.eq_ignore_ascii_case("#7EB26D"))
        })
        .map(|n| n.attribute("points").unwrap().split_whitespace().count())
        .filter(|&n| n > 2)
        .collect();
    assert_eq!(segments, vec![30, 30]);
}

#[test]
fn bad_sizes_and_ranges_are_refused() {
    let spec = ChartSpec {
        width: 10,
        ..ChartSpec::default()
    };
    assert!(matches!(
        render_chart(&spec),
        Err(RenderError::Size { width: 10, .. })
    ));
    let spec = ChartSpec {
        height: 100_000,
        ..ChartSpec::default()
    };
    assert!(matches!(render_chart(&spec), Err(RenderError::Size { .. })));
    let spec = ChartSpec {
        start_ms: Some(10),
        end_ms: Some(5),
        ..ChartSpec::default()
    };
    assert_eq!(
        render_chart(&spec),
        Err(RenderError::TimeRange { start: 10, end: 5 })
    );
}

#[test]
fn an_empty_chart_still_renders() {
    let spec = ChartSpec {
        title: "nothing".into(),
        ..ChartSpec::default()
    };
    let img = Image::decode(&render_chart(&spec).unwrap());
    assert_eq!((img.width, img.height), (800, 300));
}
