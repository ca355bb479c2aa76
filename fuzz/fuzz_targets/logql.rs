//! LogQL log queries (`query=` of `/loki/api/v1/query_range`) and the
//! `{name="value", …}` label strings of Loki protobuf pushes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osprey::logs::logql::LogQuery;
use osprey::logs::push::parse_label_string;
use osprey::logs::schema::LogSchema;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(q) = LogQuery::parse(s) {
        assert!(!q.matchers.is_empty());
        let _ = q.to_query(&LogSchema::new());
        let _ = q.passes(s);
    }
    if let Ok(labels) = parse_label_string(s) {
        assert!(
            labels
                .keys()
                .all(|k| osprey::logs::push::valid_label_name(k))
        );
    }
});
