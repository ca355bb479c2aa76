//! Dashboards over HTTP on a real server: create, list, export, import,
//! replace, delete, survival across a restart, provisioning, panel images,
//! and login with a user/password or a token (viewers cannot edit).

mod common;

use std::io::Write;
use std::process::Stdio;

use common::*;
use serde_json::{Value, json};

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::new()
}

fn send(req: reqwest::blocking::RequestBuilder) -> (u16, Value) {
    let resp = req.send().expect("server answers");
    let status = resp.status().as_u16();
    let body = resp.text().unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}")),
    )
}

fn sample_dashboard() -> Value {
    json!({
        "title": "Web tier",
        "tags": ["web"],
        "schemaVersion": 39,
        "unknownToOsprey": {"kept": [1, 2, 3]},
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [{"name": "pod", "type": "custom", "query": "web,api"}]},
        "panels": [
            {"type": "timeseries", "title": "CPU", "gridPos": {"x": 0, "y": 0, "w": 12, "h": 8},
             "targets": [{"expr": "load{pod=~\"$pod\"}", "legendFormat": "{{pod}}"}],
             "fieldConfig": {"defaults": {"unit": "percent"}}},
            {"type": "text", "title": "Notes", "gridPos": {"x": 12, "y": 0, "w": 12, "h": 8},
             "options": {"mode": "markdown", "content": "# Hello"}}
        ]
    })
}

#[test]
fn dashboards_are_stored_exported_imported_and_survive_restarts() {
    let dir = artifact_dir("dashboard-api");
    let data = dir.join("data");
    let prov = dir.join("provision");
    std::fs::create_dir_all(&prov).unwrap();
    std::fs::write(
        prov.join("ops.json"),
        json!({"uid": "ops", "title": "Ops (provisioned)", "panels": []}).to_string(),
    )
    .unwrap();
    let config = dir.join("osprey.toml");
    std::fs::write(
        &config,
        format!(
            "[server.dashboard]\nprovision_dir = {:?}\n",
            prov.display().to_string()
        ),
    )
    .unwrap();
    let mut server = ServerProcess::start(&data, Some(&config), &dir);
    let api = format!("{}/api/v1/dashboards", server.base);

    // Built-in and provisioned dashboards are listed, read-only.
    let (s, list) = send(client().get(&api));
    assert_eq!(s, 200);
    let uids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["uid"].as_str().unwrap())
        .collect();
    assert_eq!(uids, ["osprey-cluster", "ops", "osprey-pods"], "by title");
    let (s, e) = send(client().delete(format!("{api}/osprey-cluster")));
    assert_eq!(s, 409, "{e}");

    // Create: a uid is assigned; unknown fields are kept.
    let (s, created) = send(client().post(&api).json(&sample_dashboard()));
    assert_eq!(s, 200, "{created}");
    let uid = created["data"]["uid"].as_str().unwrap().to_string();
    assert_eq!(created["data"]["version"], 1);
    let (s, exported) = send(client().get(format!("{api}/{uid}")));
    assert_eq!(s, 200);
    let d = &exported["data"]["dashboard"];
    assert_eq!(d["title"], "Web tier");
    assert_eq!(d["unknownToOsprey"]["kept"], json!([1, 2, 3]));
    assert_eq!(d["panels"][0]["id"], 1);
    assert_eq!(d["panels"][1]["id"], 2);
    assert_eq!(exported["data"]["meta"]["provisioned"], false);

    // Bad input: 400 naming the field, nothing stored.
    let mut bad = sample_dashboard();
    bad["panels"][1]["gridPos"]["w"] = json!(40);
    let (s, e) = send(client().post(&api).json(&bad));
    assert_eq!(s, 400);
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .starts_with("panels[1].gridPos.w:"),
        "{e}"
    );
    let (s, e) = send(client().post(&api).body("{not json"));
    assert_eq!(s, 400, "{e}");
    let (_, list) = send(client().get(&api));
    assert_eq!(list["data"].as_array().unwrap().len(), 4);

    // Replace, then a stale version is refused.
    let mut edited = d.clone();
    edited["title"] = json!("Web tier (edited)");
    let (s, r) = send(client().put(format!("{api}/{uid}")).json(&edited));
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["data"]["version"], 2);
    let (s, _) = send(client().put(format!("{api}/{uid}")).json(&edited));
    assert_eq!(s, 409, "version 1 is stale now");

    // Import the export under its uid: refused without overwrite, accepted with.
    let (s, _) = send(client().post(&api).json(&edited));
    assert_eq!(s, 409);
    let (s, r) = send(
        client()
            .post(&api)
            .json(&json!({"dashboard": edited, "overwrite": true})),
    );
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["data"]["version"], 3);

    // A panel drawn by the server, variables applied.
    let now = now_ms();
    let samples: Vec<(i64, f64)> = (0..60)
        .map(|i| (now - 600_000 + i * 10_000, 40.0))
        .collect();
    let body = remote_write_body(&[("load", &[("pod", "web")], &samples)]);
    assert_eq!(post_write(&server.base, body, None).0, 204);
    let img = client()
        .get(format!(
            "{api}/{uid}/panels/1/render?start=now-15m&width=400&height=200&var-pod=web"
        ))
        .send()
        .unwrap();
    assert_eq!(img.status().as_u16(), 200);
    assert_eq!(img.headers()["content-type"], "image/png");
    let bytes = img.bytes().unwrap();
    let decoder = png::Decoder::new(bytes.as_ref());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (400, 200));
    let c = osprey_dashboard::render::PALETTE[0];
    let drawn = buf[..info.buffer_size()]
        .chunks_exact(3)
        .filter(|p| (p[0], p[1], p[2]) == c)
        .count();
    assert!(drawn > 100, "the web series is drawn ({drawn} pixels)");
    let (s, e) = send(client().get(format!("{api}/{uid}/panels/2/render")));
    assert_eq!(s, 400, "a text panel has no query: {e}");
    let (s, _) = send(client().get(format!("{api}/{uid}/panels/99/render")));
    assert_eq!(s, 404);

    // Restart: the dashboard is still there at its last version.
    server.guard.terminate(std::time::Duration::from_secs(10));
    let server = ServerProcess::start_on(server.port, &data, Some(&config), &dir);
    let (s, again) = send(client().get(format!("{}/api/v1/dashboards/{uid}", server.base)));
    assert_eq!(s, 200);
    assert_eq!(again["data"]["dashboard"]["title"], "Web tier (edited)");
    assert_eq!(again["data"]["dashboard"]["version"], 3);

    let (s, _) = send(client().delete(format!("{}/api/v1/dashboards/{uid}", server.base)));
    assert_eq!(s, 200);
    let (s, _) = send(client().get(format!("{}/api/v1/dashboards/{uid}", server.base)));
    assert_eq!(s, 404);
}

fn hash(password: &str) -> String {
    let mut child = osprey()
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn login_with_password_or_token_gives_a_session_with_the_role() {
    let dir = artifact_dir("dashboard-login");
    let config = dir.join("osprey.toml");
    std::fs::write(
        &config,
        format!(
            "[[server.users]]\nname = \"ann\"\npassword_hash = {:?}\nrole = \"admin\"\n\n\
             [[server.users]]\nname = \"vic\"\npassword_hash = {:?}\nrole = \"read\"\n\n\
             [[server.tokens]]\nname = \"ci\"\ntoken = \"0123456789abcdef-read\"\nrole = \"read\"\n",
            hash("ann's password"),
            hash("viewer pw")
        ),
    )
    .unwrap();
    let server = ServerProcess::start(&dir.join("data"), Some(&config), &dir);
    let base = &server.base;
    let no_cookies = client();

    // Without a session: 401.
    let (s, _) = send(no_cookies.get(format!("{base}/api/v1/dashboards")));
    assert_eq!(s, 401);
    let (s, e) = send(
        no_cookies
            .post(format!("{base}/api/v1/login"))
            .json(&json!({"user": "ann", "password": "wrong"})),
    );
    assert_eq!(s, 401, "{e}");
    let (s, e) = send(
        no_cookies
            .post(format!("{base}/api/v1/login"))
            .json(&json!({"nope": 1})),
    );
    assert_eq!(s, 400, "{e}");

    let login = |body: Value| -> String {
        let resp = no_cookies
            .post(format!("{base}/api/v1/login"))
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        cookie.split(';').next().unwrap().to_string()
    };
    let admin = login(json!({"user": "ann", "password": "ann's password"}));
    let viewer = login(json!({"user": "vic", "password": "viewer pw"}));
    let token_session = login(json!({"token": "0123456789abcdef-read"}));

    let (s, me) = send(
        client()
            .get(format!("{base}/api/v1/whoami"))
            .header("Cookie", &admin),
    );
    assert_eq!(s, 200);
    assert_eq!(
        me["data"],
        json!({"user": "ann", "role": "admin", "auth": true})
    );
    let (_, me) = send(
        client()
            .get(format!("{base}/api/v1/whoami"))
            .header("Cookie", &token_session),
    );
    assert_eq!(me["data"]["role"], "read");

    // The admin may create; the viewer may read but not write.
    let (s, r) = send(
        client()
            .post(format!("{base}/api/v1/dashboards"))
            .header("Cookie", &admin)
            .json(&sample_dashboard()),
    );
    assert_eq!(s, 200, "{r}");
    let (s, _) = send(
        client()
            .get(format!("{base}/api/v1/dashboards"))
            .header("Cookie", &viewer),
    );
    assert_eq!(s, 200);
    let (s, e) = send(
        client()
            .post(format!("{base}/api/v1/dashboards"))
            .header("Cookie", &viewer)
            .json(&sample_dashboard()),
    );
    assert_eq!(s, 403, "{e}");

    // The session secret works as a bearer token too; logout ends it.
    let secret = viewer.split_once('=').unwrap().1;
    let (s, _) = send(
        client()
            .get(format!("{base}/api/v1/whoami"))
            .bearer_auth(secret),
    );
    assert_eq!(s, 200);
    let (s, _) = send(
        client()
            .post(format!("{base}/api/v1/logout"))
            .header("Cookie", &viewer),
    );
    assert_eq!(s, 200);
    let (s, me) = send(
        client()
            .get(format!("{base}/api/v1/whoami"))
            .header("Cookie", &viewer),
    );
    assert_eq!(s, 200);
    assert_eq!(
        me["data"],
        json!({"user": null, "role": null, "auth": true})
    );
    let (s, _) = send(
        client()
            .get(format!("{base}/api/v1/dashboards"))
            .header("Cookie", &viewer),
    );
    assert_eq!(s, 401);
}

#[test]
fn front_end_files_load_by_version_and_are_cached_for_good() {
    let dir = artifact_dir("dashboard-files");
    let server = ServerProcess::start(&dir.join("data"), None, &dir);
    let c = client();
    let index = c.get(format!("{}/", server.base)).send().unwrap();
    assert_eq!(index.status().as_u16(), 200);
    assert_eq!(index.headers()["cache-control"], "no-cache");
    let html = index.text().unwrap();
    let version = osprey_dashboard::assets::VERSION;
    let prefix = format!("/ui/v/{version}/");
    assert!(html.contains(&format!("src=\"{prefix}app.js\"")), "{html}");
    assert!(
        !html.contains("\"/ui/app.js\""),
        "every file by version: {html}"
    );
    // Every file the page names is there and may be kept for good.
    let mut n = 0;
    for part in html.split(&prefix).skip(1) {
        let name = &part[..part.find('"').unwrap()];
        let resp = c
            .get(format!("{}{prefix}{name}", server.base))
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{name}");
        assert_eq!(
            resp.headers()["cache-control"],
            "public, max-age=31536000, immutable",
            "{name}"
        );
        assert!(!resp.bytes().unwrap().is_empty());
        n += 1;
    }
    assert!(n >= 15, "{n} files");
    // A page of another build gets today's file, never cached as its own;
    // the unversioned URLs still answer (and are revalidated).
    for path in [
        "/ui/v/0123456789abcdef/app.js".to_string(),
        "/ui/app.js".to_string(),
    ] {
        let resp = c.get(format!("{}{path}", server.base)).send().unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        assert_eq!(resp.headers()["cache-control"], "no-cache", "{path}");
    }
    let (status, v) = send(c.get(format!("{}{prefix}nope.js", server.base)));
    assert_eq!(status, 404);
    assert_eq!(v["status"], "error");
    // index.html only at the page's URLs (it is not a versioned file).
    let (status, _) = send(c.get(format!("{}{prefix}index.html", server.base)));
    assert_eq!(status, 404);
    // The modules import each other relatively, so that all come from the
    // versioned directory (an absolute /ui/ import would load a second,
    // unversioned copy).
    for name in ["app.js", "chart.js", "page.js", "dashboard.js"] {
        let js = c
            .get(format!("{}{prefix}{name}", server.base))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert!(!js.contains("from '/ui/"), "{name}");
    }
}
