//! Log streams in the form Loki's push API takes: JSON
//! `{"streams":[{"stream":{"label":"value",…},"values":[["<unix ns>","<line>"],…]}]}`.

use serde::Serialize;

/// One stream of log lines to forward: its labels and its entries in
/// order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogStream {
    /// The stream's labels (`namespace`, `pod`, `container`, …), any order.
    pub labels: Vec<(String, String)>,
    /// `(unix nanoseconds, line)`, oldest first.
    pub entries: Vec<(i64, String)>,
}

impl LogStream {
    /// The value of label `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Serialize)]
struct Push<'a> {
    streams: Vec<Stream<'a>>,
}

#[derive(Serialize)]
struct Stream<'a> {
    stream: std::collections::BTreeMap<&'a str, &'a str>,
    values: Vec<[String; 2]>,
}

/// The JSON push body for `streams` and its number of lines.
pub fn encode_push(streams: &[&LogStream]) -> (Vec<u8>, u64) {
    let mut lines = 0u64;
    let push = Push {
        streams: streams
            .iter()
            .map(|s| {
                lines += s.entries.len() as u64;
                Stream {
                    stream: s
                        .labels
                        .iter()
                        .map(|(n, v)| (n.as_str(), v.as_str()))
                        .collect(),
                    values: s
                        .entries
                        .iter()
                        .map(|(ts, line)| [ts.to_string(), line.clone()])
                        .collect(),
                }
            })
            .collect(),
    };
    let body = serde_json::to_vec(&push).expect("strings always serialise");
    (body, lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_body_is_lokis_json_with_nanosecond_strings() {
        let stream = LogStream {
            labels: vec![
                ("pod".into(), "api-1".into()),
                ("namespace".into(), "prod".into()),
            ],
            entries: vec![
                (1_700_000_000_000_000_001, "first \"quoted\"".into()),
                (1_700_000_000_000_000_002, "second".into()),
            ],
        };
        let (body, lines) = encode_push(&[&stream]);
        assert_eq!(lines, 2);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"streams":[{"stream":{"namespace":"prod","pod":"api-1"},
                "values":[["1700000000000000001","first \"quoted\""],["1700000000000000002","second"]]}]})
        );
    }
}
