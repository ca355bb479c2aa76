//! The Prometheus text exposition format, written by the `prometheus`
//! crate's encoder.

use prometheus::proto::{self, LabelPair, MetricFamily, MetricType};
use prometheus::{Encoder, TextEncoder};

use super::families::{Family, MetricKind};

/// Converts families into the `prometheus` crate's model.
pub fn to_proto(families: &[Family]) -> Vec<MetricFamily> {
    families
        .iter()
        .filter(|f| !f.samples.is_empty())
        .map(|f| {
            let mut mf = MetricFamily::default();
            mf.set_name(f.name.to_string());
            mf.set_help(f.help.to_string());
            mf.set_field_type(match f.kind {
                MetricKind::Counter => MetricType::COUNTER,
                MetricKind::Gauge => MetricType::GAUGE,
            });
            let metrics = f
                .samples
                .iter()
                .map(|s| {
                    let mut m = proto::Metric::default();
                    let labels = s
                        .labels()
                        .map(|(k, v)| {
                            let mut lp = LabelPair::default();
                            lp.set_name(k.to_string());
                            lp.set_value(v.to_string());
                            lp
                        })
                        .collect();
                    m.set_label(labels);
                    match f.kind {
                        MetricKind::Counter => {
                            let mut c = proto::Counter::default();
                            c.set_value(s.value);
                            m.set_counter(c);
                        }
                        MetricKind::Gauge => {
                            let mut g = proto::Gauge::default();
                            g.set_value(s.value);
                            m.set_gauge(g);
                        }
                    }
                    m
                })
                .collect();
            mf.set_metric(metrics);
            mf
        })
        .collect()
}

/// Encodes families (plus any already-built ones, e.g. the agent's own
/// registry) as Prometheus text.
pub fn encode(families: &[Family], extra: &[MetricFamily]) -> Result<Vec<u8>, prometheus::Error> {
    let mut all = to_proto(families);
    all.extend_from_slice(extra);
    let mut buf = Vec::with_capacity(256 * 1024);
    TextEncoder::new().encode(&all, &mut buf)?;
    Ok(buf)
}
