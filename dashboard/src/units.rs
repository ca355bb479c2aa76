//! Value formatting by unit, shared by the server-side renderer. The unit
//! names are Grafana's (`bytes`, `Bps`, `percent`, `percentunit`, `s`,
//! `ms`, `short`) plus Osprey's `cores` and `millicores`; the browser's
//! `web/src/units.js` implements the same table.

/// Formats `v` in `unit` with about three significant digits, scaling with
/// binary (bytes) or SI prefixes. Unknown units are appended as a suffix.
pub fn format_value(v: f64, unit: &str) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    match unit {
        "bytes" | "decbytes" => scaled(v, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB", "PiB"], ""),
        "Bps" | "bytes/s" => scaled(
            v,
            1024.0,
            &["B/s", "KiB/s", "MiB/s", "GiB/s", "TiB/s", "PiB/s"],
            "",
        ),
        "percent" => format!("{}%", digits(v)),
        "percentunit" => format!("{}%", digits(v * 100.0)),
        "s" | "seconds" => duration(v),
        "ms" => duration(v / 1000.0),
        "cores" => format!("{} cores", digits(v)),
        "millicores" => format!("{}m", digits(v)),
        "" | "short" | "none" => scaled(v, 1000.0, &["", "K", "M", "G", "T", "P"], ""),
        other => format!(
            "{} {other}",
            scaled(v, 1000.0, &["", "K", "M", "G", "T", "P"], "")
        ),
    }
}

/// Three significant digits without trailing zeros.
fn digits(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let mag = v.abs().log10().floor() as i32;
    let decimals = (2 - mag).clamp(0, 6) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn scaled(v: f64, base: f64, names: &[&str], sep: &str) -> String {
    let mut x = v;
    let mut i = 0;
    while x.abs() >= base && i + 1 < names.len() {
        x /= base;
        i += 1;
    }
    let name = names[i];
    if name.is_empty() {
        digits(x)
    } else if name.starts_with('B') || name.contains("iB") {
        format!("{} {name}", digits(x))
    } else {
        format!("{}{sep}{name}", digits(x))
    }
}

fn duration(secs: f64) -> String {
    let a = secs.abs();
    if a == 0.0 {
        "0 s".into()
    } else if a < 1e-6 {
        format!("{} ns", digits(secs * 1e9))
    } else if a < 1e-3 {
        format!("{} µs", digits(secs * 1e6))
    } else if a < 1.0 {
        format!("{} ms", digits(secs * 1e3))
    } else if a < 60.0 {
        format!("{} s", digits(secs))
    } else if a < 3600.0 {
        format!("{} min", digits(secs / 60.0))
    } else if a < 86400.0 {
        format!("{} h", digits(secs / 3600.0))
    } else {
        format!("{} d", digits(secs / 86400.0))
    }
}

#[cfg(test)]
mod tests {
    use super::format_value;

    #[test]
    fn units_scale_and_name_themselves() {
        assert_eq!(format_value(1536.0 * 1024.0 * 1024.0, "bytes"), "1.5 GiB");
        assert_eq!(format_value(512.0, "bytes"), "512 B");
        assert_eq!(format_value(2048.0, "Bps"), "2 KiB/s");
        assert_eq!(format_value(42.123, "percent"), "42.1%");
        assert_eq!(format_value(0.5, "percentunit"), "50%");
        assert_eq!(format_value(0.25, "s"), "250 ms");
        assert_eq!(format_value(90.0, "s"), "1.5 min");
        assert_eq!(format_value(0.98, "cores"), "0.98 cores");
        assert_eq!(format_value(250.0, "millicores"), "250m");
        assert_eq!(format_value(12_500.0, "short"), "12.5K");
        assert_eq!(format_value(3.0, "req"), "3 req");
        assert_eq!(format_value(f64::NAN, "bytes"), "NaN");
        assert_eq!(format_value(0.0, ""), "0");
    }
}
