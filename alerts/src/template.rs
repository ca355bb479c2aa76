//! The Go-template subset Prometheus rule files use in labels and
//! annotations: `{{ $labels.name }}`, `{{ .Labels.name }}`, `{{ $value }}`,
//! `{{ .Value }}`, `{{ $externalLabels.name }}`, the pipelines
//! `{{ $value | humanize }}`, `{{ humanize $value }}`,
//! `{{ $value | humanizePercentage }}` and `{{ printf "%.2f" $value }}`.
//! Anything else is an error naming the action, so a rule with a template
//! we cannot render is refused when loaded rather than sent half-rendered.

use crate::labels::LabelSet;

/// What a template may refer to.
pub struct TemplateData<'a> {
    /// The alert's labels (`$labels`).
    pub labels: &'a LabelSet,
    /// The alert's value (`$value`).
    pub value: f64,
    /// The server's external labels (`$externalLabels`).
    pub external_labels: &'a LabelSet,
}

/// A template that cannot be rendered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("template {template:?}: {why}")]
pub struct TemplateError {
    /// The whole template.
    pub template: String,
    /// The problem.
    pub why: String,
}

/// Renders `template` with `data`.
pub fn render(template: &str, data: &TemplateData<'_>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    let err = |why: String| TemplateError {
        template: template.to_string(),
        why,
    };
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| err("`{{` without a closing `}}`".into()))?;
        let action = after[..end].trim_matches(|c: char| c.is_whitespace() || c == '-');
        out.push_str(&eval_action(action, data).map_err(err)?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Checks a template against sample data (used when rules are loaded).
pub fn check(template: &str) -> Result<(), TemplateError> {
    let empty = LabelSet::new();
    render(
        template,
        &TemplateData {
            labels: &empty,
            value: 0.0,
            external_labels: &empty,
        },
    )
    .map(|_| ())
}

enum Val {
    Num(f64),
    Str(String),
}

impl Val {
    fn show(self) -> String {
        match self {
            Val::Num(v) => format_value(v),
            Val::Str(s) => s,
        }
    }
}

/// Prometheus's `%v` of a float: shortest form, `+Inf`, `NaN`.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

fn term(t: &str, data: &TemplateData<'_>) -> Result<Val, String> {
    let t = t.trim();
    if t == "$value" || t == ".Value" {
        return Ok(Val::Num(data.value));
    }
    for (prefix, set) in [
        ("$labels.", data.labels),
        (".Labels.", data.labels),
        ("$externalLabels.", data.external_labels),
        (".ExternalLabels.", data.external_labels),
    ] {
        if let Some(name) = t.strip_prefix(prefix) {
            return Ok(Val::Str(set.get(name).cloned().unwrap_or_default()));
        }
    }
    if t.starts_with('"') {
        return serde_json::from_str::<String>(t)
            .map(Val::Str)
            .map_err(|_| format!("bad string literal {t}"));
    }
    if let Ok(v) = t.parse::<f64>() {
        return Ok(Val::Num(v));
    }
    Err(format!("unsupported term {t:?}"))
}

fn apply(func: &str, args: Vec<Val>) -> Result<Val, String> {
    let num = |v: &Val| match v {
        Val::Num(n) => Ok(*n),
        Val::Str(s) => s
            .parse::<f64>()
            .map_err(|_| format!("{func}: {s:?} is not a number")),
    };
    match (func, args.as_slice()) {
        ("humanize", [v]) => Ok(Val::Str(humanize(num(v)?))),
        ("humanizePercentage", [v]) => {
            let s = format!("{:.4}", num(v)? * 100.0);
            Ok(Val::Str(format!(
                "{}%",
                s.trim_end_matches('0').trim_end_matches('.')
            )))
        }
        ("printf", [Val::Str(f), v]) => printf(f, num(v)?),
        ("toUpper", [Val::Str(s)]) => Ok(Val::Str(s.to_uppercase())),
        ("toLower", [Val::Str(s)]) => Ok(Val::Str(s.to_lowercase())),
        _ => Err(format!(
            "unsupported function {func} with {} argument(s)",
            args.len()
        )),
    }
}

fn printf(format: &str, v: f64) -> Result<Val, String> {
    let spec = format
        .strip_prefix('%')
        .ok_or_else(|| format!("printf format {format:?} must start with %"))?;
    if let Some(p) = spec.strip_prefix('.').and_then(|s| s.strip_suffix('f')) {
        let p: usize = p
            .parse()
            .map_err(|_| format!("bad precision in {format:?}"))?;
        return Ok(Val::Str(format!("{v:.p$}")));
    }
    match spec {
        "f" => Ok(Val::Str(format!("{v:.6}"))),
        "v" | "g" => Ok(Val::Str(format_value(v))),
        "d" => Ok(Val::Str(format!("{}", v as i64))),
        _ => Err(format!("unsupported printf format {format:?}")),
    }
}

/// Prometheus's `humanize`: SI prefixes, 4 significant digits.
pub fn humanize(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format_value(v);
    }
    let a = v.abs();
    let (div, suffix) = if a >= 1e15 {
        (1e15, "P")
    } else if a >= 1e12 {
        (1e12, "T")
    } else if a >= 1e9 {
        (1e9, "G")
    } else if a >= 1e6 {
        (1e6, "M")
    } else if a >= 1e3 {
        (1e3, "k")
    } else if a >= 1.0 {
        (1.0, "")
    } else if a >= 1e-3 {
        (1e-3, "m")
    } else if a >= 1e-6 {
        (1e-6, "u")
    } else {
        (1e-9, "n")
    };
    let x = v / div;
    // Go's %.4g: four significant digits, trailing zeros dropped.
    let digits = (3 - x.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{x:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    format!("{s}{suffix}")
}

fn eval_action(action: &str, data: &TemplateData<'_>) -> Result<String, String> {
    let mut stages = action.split('|');
    let first = stages.next().unwrap_or("").trim();
    let words = split_words(first);
    let mut val = match words.as_slice() {
        [] => return Err("empty action".into()),
        [one] => term(one, data)?,
        [func, args @ ..] => {
            let args = args
                .iter()
                .map(|a| term(a, data))
                .collect::<Result<Vec<_>, _>>()?;
            apply(func, args)?
        }
    };
    for stage in stages {
        let words = split_words(stage.trim());
        let (func, extra) = words.split_first().ok_or("empty pipeline stage")?;
        let mut args = extra
            .iter()
            .map(|a| term(a, data))
            .collect::<Result<Vec<_>, _>>()?;
        args.push(val);
        val = apply(func, args)?;
    }
    Ok(val.show())
}

/// Splits on spaces outside double quotes.
fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labels_values_and_pipelines() {
        let labels: LabelSet = [("pod".to_string(), "web-1".to_string())].into();
        let ext = LabelSet::new();
        let d = TemplateData {
            labels: &labels,
            value: 1234.5678,
            external_labels: &ext,
        };
        assert_eq!(
            render("{{ $labels.pod }} at {{ $value }}", &d).unwrap(),
            "web-1 at 1234.5678"
        );
        assert_eq!(render("{{ .Labels.pod }}", &d).unwrap(), "web-1");
        assert_eq!(render("{{ $value | humanize }}", &d).unwrap(), "1.235k");
        assert_eq!(render("{{ humanize $value }}", &d).unwrap(), "1.235k");
        assert_eq!(
            render("{{ printf \"%.1f\" $value }}", &d).unwrap(),
            "1234.6"
        );
        assert_eq!(render("{{ $labels.none }}", &d).unwrap(), "");
        assert!(render("{{ range . }}", &d).is_err());
        assert!(render("{{ $value ", &d).is_err());
    }
}
