//! `osprey logs search|tail`: the log search API from a terminal.

use std::io::{BufRead, BufReader, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

/// `osprey logs …`.
#[derive(Debug, Subcommand)]
pub enum LogsCommand {
    /// Print lines matching a query, newest first.
    Search(SearchArgs),
    /// Print new matching lines as they arrive, until interrupted.
    Tail(TailArgs),
}

/// Options both subcommands take.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The Osprey server's base URL.
    #[arg(long, env = "OSPREY_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// Bearer token with the read role (when the server has tokens).
    #[arg(long, env = "OSPREY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Query: words and "phrases" over the message, field filters
    /// `namespace:`, `pod:`, `container:`, `node:`, `stream:`, `level:`,
    /// `AND`/`OR`/`NOT`. Empty matches every line.
    #[arg(long, short = 'q', default_value = "")]
    pub query: String,
    /// Print each line as a JSON object (the API's form).
    #[arg(long)]
    pub json: bool,
}

/// `osprey logs search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Server, token, query, output.
    #[command(flatten)]
    pub common: ServerArgs,
    /// How far back to search when --start is not given (e.g. 15m, 2h, 1d).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub since: Duration,
    /// Start of the range: RFC 3339 or Unix seconds.
    #[arg(long)]
    pub start: Option<String>,
    /// End of the range: RFC 3339 or Unix seconds [default: now].
    #[arg(long)]
    pub end: Option<String>,
    /// Most lines to print.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Oldest first instead of newest first.
    #[arg(long)]
    pub forward: bool,
}

/// `osprey logs tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// Server, token, query, output.
    #[command(flatten)]
    pub common: ServerArgs,
}

/// Runs `osprey logs …`.
pub fn run(cmd: LogsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        LogsCommand::Search(a) => search(a),
        LogsCommand::Tail(a) => tail(a),
    }
}

fn client(timeout: Option<Duration>) -> anyhow::Result<reqwest::blocking::Client> {
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .build()
        .context("building the HTTP client")
}

fn get(
    client: &reqwest::blocking::Client,
    common: &ServerArgs,
    path: &str,
    params: &[(&str, String)],
) -> anyhow::Result<reqwest::blocking::Response> {
    let url = format!("{}{path}", common.server.trim_end_matches('/'));
    let mut req = client.get(&url).query(params);
    if let Some(t) = &common.token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().unwrap_or_default();
        let msg = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or(body);
        bail!("{url}: {status}: {msg}");
    }
    Ok(resp)
}

/// One line as text: time, where it comes from, the message.
fn text_line(l: &serde_json::Value) -> String {
    let s = |k: &str| l[k].as_str().unwrap_or("").to_string();
    let mut origin = [s("namespace"), s("pod"), s("container")]
        .into_iter()
        .filter(|x| !x.is_empty())
        .collect::<Vec<_>>()
        .join("/");
    if origin.is_empty() {
        origin = l["labels"]["job"]
            .as_str()
            .or(l["labels"]["filename"].as_str())
            .unwrap_or("-")
            .to_string();
    }
    format!("{} {} {}", s("ts"), origin, s("message"))
}

fn print_line(out: &mut impl Write, l: &serde_json::Value, json: bool) -> std::io::Result<()> {
    if json {
        writeln!(out, "{l}")
    } else {
        writeln!(out, "{}", text_line(l))
    }
}

fn search(a: SearchArgs) -> anyhow::Result<ExitCode> {
    let client = client(Some(Duration::from_secs(60)))?;
    let start = match &a.start {
        Some(s) => s.clone(),
        None => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            format!("{:.3}", now.saturating_sub(a.since).as_secs_f64())
        }
    };
    let mut params = vec![
        ("query", a.common.query.clone()),
        ("start", start),
        (
            "direction",
            if a.forward { "forward" } else { "backward" }.into(),
        ),
    ];
    if let Some(e) = &a.end {
        params.push(("end", e.clone()));
    }
    let mut printed = 0;
    let mut cursor: Option<String> = None;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    while printed < a.limit {
        let mut p = params.clone();
        p.push(("limit", (a.limit - printed).min(5000).to_string()));
        if let Some(c) = &cursor {
            p.push(("cursor", c.clone()));
        }
        let v: serde_json::Value = get(&client, &a.common, "/api/v1/logs/search", &p)?
            .json()
            .context("the server's answer is not JSON")?;
        let lines = v["data"]["lines"].as_array().cloned().unwrap_or_default();
        for l in &lines {
            print_line(&mut out, l, a.common.json)?;
        }
        printed += lines.len();
        match v["data"]["next_cursor"].as_str() {
            Some(c) if !lines.is_empty() => cursor = Some(c.to_string()),
            _ => break,
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn tail(a: TailArgs) -> anyhow::Result<ExitCode> {
    let client = client(None)?;
    let resp = get(
        &client,
        &a.common,
        "/api/v1/logs/tail",
        &[("query", a.common.query.clone())],
    )?;
    let stdout = std::io::stdout();
    for line in BufReader::new(resp).lines() {
        let line = line.context("reading the stream")?;
        if let Some(data) = line.strip_prefix("data:") {
            let v: serde_json::Value =
                serde_json::from_str(data.trim_start()).context("an event is not JSON")?;
            let mut out = stdout.lock();
            print_line(&mut out, &v, a.common.json)?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
