//! E-mail over SMTP with lettre: STARTTLS, implicit TLS (port 465) or
//! plain; optional authentication; a `multipart/mixed` message holding
//! `multipart/alternative` text and HTML bodies (alerts, labels, values,
//! links to the dashboard) and the chart as a PNG attachment.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use super::webhook::rfc3339;
use super::{ChannelSpec, Notification, SendContext, SendError};
use crate::alert::AlertState;
use crate::template::format_value;

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS; fails if not offered.
    #[default]
    Starttls,
    /// STARTTLS when offered, plain otherwise.
    Opportunistic,
    /// TLS from the first byte (usually port 465).
    Tls,
    /// No encryption (a local relay or test server).
    None,
}

/// An e-mail channel's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Recipients.
    pub to: Vec<String>,
    /// Sender, e.g. `Osprey <osprey@example.com>`.
    pub from: String,
    /// SMTP server `host:port`.
    pub smarthost: String,
    /// Connection security.
    #[serde(default)]
    pub security: SmtpSecurity,
    /// Name sent in EHLO [default: lettre's default, the host name].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hello: Option<String>,
    /// User name for SMTP AUTH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password, inline. Prefer `password_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// A file holding the password (whitespace trimmed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// A PEM file of CA certificates trusted besides the built-in roots
    /// (a private mail relay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate (testing only).
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Extra text at the top of the body.
    #[serde(default)]
    pub note: String,
    /// Extra headers are not supported; kept for forward compatibility of
    /// stored channels (must be empty).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

impl EmailConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.to.is_empty() {
            return Err("an e-mail channel needs at least one address in `to`".into());
        }
        for a in self.to.iter().chain(std::iter::once(&self.from)) {
            a.parse::<Mailbox>()
                .map_err(|e| format!("{a:?} is not an e-mail address: {e}"))?;
        }
        self.host_port()?;
        if !self.headers.is_empty() {
            return Err("custom e-mail `headers` are not supported".into());
        }
        if self.password.is_some() && self.username.is_none() {
            return Err("`password` given without `username`".into());
        }
        Ok(())
    }

    fn host_port(&self) -> Result<(String, u16), String> {
        let (host, port) = self
            .smarthost
            .rsplit_once(':')
            .ok_or_else(|| format!("`smarthost` {:?} must be host:port", self.smarthost))?;
        let port = port
            .parse()
            .map_err(|_| format!("`smarthost` {:?} has a bad port", self.smarthost))?;
        if host.is_empty() {
            return Err("`smarthost` has no host".into());
        }
        Ok((host.trim_matches(['[', ']']).to_string(), port))
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `[FIRING:2] HighCPU (prod)` or `[RESOLVED] HighCPU (prod)`.
pub fn subject(n: &Notification) -> String {
    let firing = n.firing().count();
    let head = if firing > 0 {
        format!("[FIRING:{firing}]")
    } else {
        "[RESOLVED]".into()
    };
    let group: Vec<&str> = n.group_labels.values().map(String::as_str).collect();
    let common = n.common_labels();
    let others: Vec<&str> = common
        .iter()
        .filter(|(k, _)| !n.group_labels.contains_key(*k))
        .map(|(_, v)| v.as_str())
        .collect();
    let mut s = format!("{head} {}", group.join(" "));
    if !others.is_empty() {
        let _ = write!(s, " ({})", others.join(" "));
    }
    s
}

/// The text and HTML bodies.
pub fn bodies(
    n: &Notification,
    dashboard_url: &str,
    note: &str,
    has_chart: bool,
) -> (String, String) {
    let mut text = String::new();
    let mut html = String::from("<!DOCTYPE html><html><body style=\"font-family:sans-serif\">");
    if !note.is_empty() {
        let _ = writeln!(text, "{note}\n");
        let _ = write!(html, "<p>{}</p>", esc(note));
    }
    let _ = writeln!(text, "{}\nReason: {}\n", subject(n), n.reason);
    let _ = write!(
        html,
        "<h2>{}</h2><p>Reason: {}</p>",
        esc(&subject(n)),
        esc(&n.reason)
    );
    for a in &n.alerts {
        let state = if a.state == AlertState::Resolved {
            "RESOLVED"
        } else {
            "FIRING"
        };
        let _ = writeln!(
            text,
            "[{state}] {}  value {}",
            a.name(),
            format_value(a.value)
        );
        let _ = write!(
            html,
            "<h3 style=\"color:{}\">[{state}] {}</h3><p>Value: <b>{}</b><br>Since: {}{}</p><table border=\"1\" cellpadding=\"3\" style=\"border-collapse:collapse\">",
            if state == "FIRING" { "#b00" } else { "#070" },
            esc(a.name()),
            esc(&format_value(a.value)),
            esc(&rfc3339(a.fired_at.unwrap_or(a.active_at))),
            a.resolved_at
                .map(|r| format!("<br>Resolved: {}", esc(&rfc3339(r))))
                .unwrap_or_default()
        );
        let _ = writeln!(
            text,
            "  since {}",
            rfc3339(a.fired_at.unwrap_or(a.active_at))
        );
        if let Some(r) = a.resolved_at {
            let _ = writeln!(text, "  resolved {}", rfc3339(r));
        }
        for (k, v) in &a.labels {
            let _ = writeln!(text, "  {k} = {v}");
            let _ = write!(html, "<tr><td>{}</td><td>{}</td></tr>", esc(k), esc(v));
        }
        html.push_str("</table>");
        for (k, v) in &a.annotations {
            let _ = writeln!(text, "  {k}: {v}");
            let _ = write!(html, "<p><b>{}</b>: {}</p>", esc(k), esc(v));
        }
        let _ = writeln!(text, "  source: {}\n", a.generator_url);
        let _ = write!(
            html,
            "<p><a href=\"{}\">Query</a></p>",
            esc(&a.generator_url)
        );
    }
    let link = format!("{}/alerts", dashboard_url.trim_end_matches('/'));
    let _ = writeln!(text, "Dashboard: {link}");
    let _ = write!(
        html,
        "<p><a href=\"{}\">Open the dashboard</a></p>",
        esc(&link)
    );
    if has_chart {
        let _ = writeln!(text, "The chart is attached (chart.png).");
        html.push_str("<p>The chart is attached (chart.png).</p>");
    }
    html.push_str("</body></html>");
    (text, html)
}

/// Builds the message.
pub fn message(
    c: &EmailConfig,
    n: &Notification,
    dashboard_url: &str,
    chart: Option<&[u8]>,
) -> Result<Message, SendError> {
    let bad = |e: String| SendError::permanent(e);
    let mut b = Message::builder()
        .from(c.from.parse().map_err(|e| bad(format!("from: {e}")))?)
        .subject(subject(n));
    for to in &c.to {
        b = b.to(to.parse().map_err(|e| bad(format!("to {to:?}: {e}")))?);
    }
    let (text, html) = bodies(n, dashboard_url, &c.note, chart.is_some());
    let alt = MultiPart::alternative()
        .singlepart(SinglePart::plain(text))
        .singlepart(SinglePart::html(html));
    let body =
        match chart {
            Some(png) => MultiPart::mixed().multipart(alt).singlepart(
                Attachment::new("chart.png".into()).body(
                    png.to_vec(),
                    ContentType::parse("image/png").expect("valid"),
                ),
            ),
            None => MultiPart::mixed().multipart(alt),
        };
    b.multipart(body)
        .map_err(|e| bad(format!("building the message: {e}")))
}

pub(crate) async fn send(
    c: &EmailConfig,
    _channel: &ChannelSpec,
    n: &Notification,
    ctx: &SendContext<'_>,
) -> Result<(), SendError> {
    let msg = message(c, n, ctx.dashboard_url, ctx.chart)?;
    let (host, port) = c.host_port().map_err(SendError::permanent)?;
    let tls = || {
        let mut b = TlsParameters::builder(host.clone())
            .dangerous_accept_invalid_certs(c.insecure_skip_verify);
        if let Some(path) = &c.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                SendError::permanent(format!("cannot read `ca_file` {}: {e}", path.display()))
            })?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| SendError::permanent(format!("`ca_file` {}: {e}", path.display())))?;
            b = b.add_root_certificate(cert);
        }
        b.build()
            .map_err(|e| SendError::permanent(format!("TLS settings for {host}: {e}")))
    };
    let tls = match c.security {
        SmtpSecurity::None => Tls::None,
        SmtpSecurity::Starttls => Tls::Required(tls()?),
        SmtpSecurity::Opportunistic => Tls::Opportunistic(tls()?),
        SmtpSecurity::Tls => Tls::Wrapper(tls()?),
    };
    let mut t = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
        .port(port)
        .tls(tls)
        .timeout(Some(ctx.timeout));
    if let Some(h) = &c.hello {
        t = t.hello_name(ClientId::Domain(h.clone()));
    }
    if let Some(user) = &c.username {
        let password = match (&c.password, &c.password_file) {
            (_, Some(p)) => std::fs::read_to_string(p)
                .map_err(|e| SendError::permanent(format!("cannot read {}: {e}", p.display())))?
                .trim()
                .to_string(),
            (Some(p), None) => p.clone(),
            (None, None) => String::new(),
        };
        t = t.credentials(Credentials::new(user.clone(), password));
    }
    t.build().send(msg).await.map(|_| ()).map_err(|e| {
        let m = format!("SMTP {}: {e}", c.smarthost);
        if e.is_permanent() {
            SendError::permanent(m)
        } else {
            SendError::retry(m)
        }
    })
}
