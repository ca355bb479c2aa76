//! Label sets and their fingerprints (Prometheus's FNV-1a form, so that
//! fingerprints match what Alertmanager shows for the same alert).

use std::collections::BTreeMap;

/// A set of labels, sorted by name.
pub type LabelSet = BTreeMap<String, String>;

/// The label holding an alert's name.
pub const ALERTNAME: &str = "alertname";

/// The metric-name label, dropped from alert identities.
pub const METRIC_NAME: &str = "__name__";

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const SEPARATOR: u8 = 0xff;

/// FNV-1a 64 over the sorted names and values, each followed by 0xff
/// (`prometheus/common` `model.LabelsToSignature`).
pub fn fingerprint(labels: &LabelSet) -> u64 {
    let mut h = FNV_OFFSET;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(FNV_PRIME);
        }
    };
    for (name, value) in labels {
        feed(name.as_bytes());
        feed(&[SEPARATOR]);
        feed(value.as_bytes());
        feed(&[SEPARATOR]);
    }
    h
}

/// The fingerprint as Alertmanager prints it: 16 hex digits.
pub fn fingerprint_hex(labels: &LabelSet) -> String {
    format!("{:016x}", fingerprint(labels))
}

/// `{a="1", b="2"}`, values escaped as in PromQL.
pub fn to_selector_string(labels: &LabelSet) -> String {
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", serde_json::Value::String(v.clone())))
        .collect();
    format!("{{{}}}", inner.join(", "))
}

/// True when every label of `subset` has the same value in `labels`.
pub fn contains_all(labels: &LabelSet, subset: &LabelSet) -> bool {
    subset.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_set_has_the_fnv_offset_and_order_does_not_matter() {
        assert_eq!(fingerprint(&LabelSet::new()), FNV_OFFSET);
        let a: LabelSet = [("a", "1"), ("b", "2")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let b: LabelSet = [("b", "2"), ("a", "1")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let c: LabelSet = [("a", "12")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_ne!(fingerprint(&a), fingerprint(&c));
        assert_eq!(fingerprint_hex(&a).len(), 16);
    }
}
