//! Every endpoint the OpenAPI document lists answers (none is a 404), and
//! errors are JSON.

mod common;

use common::*;

#[test]
fn every_documented_endpoint_answers() {
    let dir = artifact_dir("server-openapi");
    let server = ServerProcess::start(&dir.join("data"), None, &dir);
    let doc: serde_json::Value =
        serde_json::from_str(&get(&format!("{}/api/openapi.json", server.base)).unwrap().1)
            .unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "{} paths", paths.len());
    let client = reqwest::blocking::Client::new();
    for (path, ops) in paths {
        let concrete = path
            .replace("{metric}", "cpu/usage")
            .replace("{node}", "node-1")
            .replace("{namespace}", "default")
            .replace("{pod}", "web")
            .replace("{pods}", "web,api")
            .replace("{name}", "__name__")
            .replace("{uid}", "osprey-cluster")
            .replace("{id}", "5");
        let url = format!("{}{concrete}", server.base);
        for method in ops.as_object().unwrap().keys() {
            let resp = match method.as_str() {
                "get" => client
                    .get(&url)
                    .query(&[("query", "1"), ("match[]", "up")])
                    .send(),
                "post" => client.post(&url).form(&[("query", "1")]).send(),
                "put" => client.put(&url).body("{}").send(),
                "delete" => client.delete(&url).send(),
                other => panic!("unexpected method {other}"),
            }
            .unwrap();
            let status = resp.status().as_u16();
            let body = resp.text().unwrap();
            // A 404 about the missing item is an answer; the router's
            // fallback ("no endpoint …") means the path is not served.
            assert!(
                status != 404 || (path.contains("{id}") && !body.contains("no endpoint")),
                "{method} {concrete} is documented but not served: {body}"
            );
            assert!(status < 500, "{method} {concrete}: {status} {body}");
            if status >= 400 {
                let v: serde_json::Value = serde_json::from_str(&body)
                    .unwrap_or_else(|_| panic!("{method} {concrete}: error is not JSON: {body}"));
                assert!(v["error"].is_string(), "{body}");
            }
        }
    }
}
