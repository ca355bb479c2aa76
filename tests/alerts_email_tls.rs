//! E-mail channels over TLS against a real SMTP server (aiosmtpd) with a
//! certificate from a test CA made by `openssl`: STARTTLS and implicit TLS
//! deliver when the CA is trusted (`ca_file`), and fail — reported by the
//! test notification, not silently — when it is not, or when TLS is
//! skipped against a server that requires it.

mod common;

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (installed by .ci/run)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it.
fn make_certs(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=Osprey test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.pem",
            "-extfile",
            "ext.cnf",
        ],
    );
}

fn smtp(dir: &Path, port: u16, tls_args: &[&str], name: &str) -> ChildGuard {
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .args(tls_args)
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(dir.join(format!("maildir-{name}")));
    let g = ChildGuard::spawn(cmd, &format!("smtp-{name}"), dir);
    wait_for(Duration::from_secs(30), "aiosmtpd to listen", || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
    g
}

fn mail_count(dir: &Path, name: &str) -> usize {
    std::fs::read_dir(dir.join(format!("maildir-{name}")).join("new"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn test_channel(base: &str, id: &str) -> Value {
    let resp = reqwest::blocking::Client::new()
        .post(format!("{base}/api/v1/alerting/channels/{id}/test"))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.json::<Value>().unwrap()["data"].clone()
}

#[test]
fn starttls_and_implicit_tls_deliver_with_a_trusted_ca_and_fail_loudly_without() {
    let dir = artifact_dir("alerts-email-tls");
    make_certs(&dir);
    let cert = dir.join("server.pem").display().to_string();
    let key = dir.join("server.key").display().to_string();
    let (p_starttls, p_tls) = (free_port(), free_port());
    let _a = smtp(
        &dir,
        p_starttls,
        &["--tlscert", &cert, "--tlskey", &key],
        "starttls",
    );
    let _b = smtp(
        &dir,
        p_tls,
        &["--smtpscert", &cert, "--smtpskey", &key],
        "smtps",
    );
    let ca = dir.join("ca.pem").display().to_string();
    let channel = |id: &str, port: u16, security: &str, ca: Option<&str>| {
        let mut c = json!({"id": id, "type": "email", "to": ["ops@example.test"],
            "from": "osprey@example.test", "smarthost": format!("127.0.0.1:{port}"),
            "security": security});
        if let Some(ca) = ca {
            c["ca_file"] = json!(ca);
        }
        c
    };
    let server = ServerProcess::start(&dir.join("data"), None, &dir);
    for c in [
        channel("starttls", p_starttls, "starttls", Some(&ca)),
        channel("smtps", p_tls, "tls", Some(&ca)),
        channel("untrusted", p_starttls, "starttls", None),
        channel("plain", p_starttls, "none", None),
    ] {
        let resp = reqwest::blocking::Client::new()
            .post(format!("{}/api/v1/alerting/channels", server.base))
            .json(&c)
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201, "{}", resp.text().unwrap());
    }
    let r = test_channel(&server.base, "starttls");
    assert_eq!(r["delivered"], true, "{r}");
    assert_eq!(mail_count(&dir, "starttls"), 1);
    let r = test_channel(&server.base, "smtps");
    assert_eq!(r["delivered"], true, "{r}");
    assert_eq!(mail_count(&dir, "smtps"), 1);
    let r = test_channel(&server.base, "untrusted");
    assert_eq!(
        r["delivered"], false,
        "a certificate from an unknown CA is refused: {r}"
    );
    assert!(
        r["error"].as_str().unwrap().to_lowercase().contains("cert"),
        "{r}"
    );
    let r = test_channel(&server.base, "plain");
    assert_eq!(r["delivered"], false, "the server requires STARTTLS: {r}");
    assert!(r["error"].as_str().unwrap().contains("530"), "{r}");
    assert_eq!(mail_count(&dir, "starttls"), 1, "nothing else arrived");
}

/// aiosmtpd requiring STARTTLS and then AUTH (user `osprey`, password
/// `pw-0123`), as a relay with accounts does.
const AUTH_SERVER: &str = r#"
import logging, ssl, sys, time
logging.basicConfig(level=logging.DEBUG)
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword

port, cert, key, maildir = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

def check(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login == b"osprey" and data.password == b"pw-0123"
    print("auth", mechanism, type(data).__name__, getattr(data, "login", None), ok, flush=True)
    # handled=False: aiosmtpd answers 235 or 535 itself.
    return AuthResult(success=ok, handled=False)

ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
c = Controller(Mailbox(maildir), hostname="127.0.0.1", port=port, tls_context=ctx,
               require_starttls=True, authenticator=check, auth_required=True)
c.start()
print("listening", flush=True)
while True:
    time.sleep(3600)
"#;

#[test]
fn smtp_auth_over_starttls() {
    let dir = artifact_dir("alerts-email-auth");
    make_certs(&dir);
    let port = free_port();
    let mut cmd = Command::new("python3");
    cmd.arg("-c")
        .arg(AUTH_SERVER)
        .arg(port.to_string())
        .arg(dir.join("server.pem"))
        .arg(dir.join("server.key"))
        .arg(dir.join("maildir-auth"));
    let _smtp = ChildGuard::spawn(cmd, "smtp-auth", &dir);
    wait_for(Duration::from_secs(30), "the AUTH SMTP server", || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
    let server = ServerProcess::start(&dir.join("data"), None, &dir);
    std::fs::write(dir.join("password"), "pw-0123\n").unwrap();
    let ca = dir.join("ca.pem").display().to_string();
    let pw_file = dir.join("password").display().to_string();
    for (id, password) in [("good", Some(pw_file.as_str())), ("bad", None)] {
        let mut c = json!({"id": id, "type": "email", "to": ["ops@example.test"],
            "from": "osprey@example.test", "smarthost": format!("127.0.0.1:{port}"),
            "security": "starttls", "ca_file": ca, "username": "osprey"});
        match password {
            Some(f) => c["password_file"] = json!(f),
            None => c["password"] = json!("wrong"),
        }
        let resp = reqwest::blocking::Client::new()
            .post(format!("{}/api/v1/alerting/channels", server.base))
            .json(&c)
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201, "{}", resp.text().unwrap());
    }
    let listed: Value = get_json(&format!("{}/api/v1/alerting/channels/bad", server.base));
    assert_eq!(listed["data"]["password"], "<secret>");
    let r = test_channel(&server.base, "good");
    assert_eq!(r["delivered"], true, "{r}");
    assert_eq!(mail_count(&dir, "auth"), 1);
    let r = test_channel(&server.base, "bad");
    assert_eq!(r["delivered"], false, "{r}");
    assert!(r["error"].as_str().unwrap().contains("535"), "{r}");
    assert_eq!(mail_count(&dir, "auth"), 1);
}
