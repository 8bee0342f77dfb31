//! Runs `fixtures/git/*.json` (spec `resolver.md` G3, G6) against
//! `vaultref::git`. Every vector is checked; a failure lists every vector that
//! disagreed, by id.

use serde_json::Value;
use vaultref::git::Remote;
use vaultref::git::credential::{Description, request_matches};

fn vectors(file: &str) -> Vec<Value> {
    let dir = vaultref::testing::vectors::fixtures_dir().join("git");
    let v: Vec<Value> = vaultref::testing::vectors::load_dir(&dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .find(|f| f.name == file)
        .unwrap_or_else(|| panic!("no fixtures/git/{file}"))
        .vectors()
        .to_vec();
    assert!(!v.is_empty(), "{file} has no vectors");
    let mut ids: Vec<&str> = v.iter().map(|x| x["id"].as_str().expect("an id")).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), v.len(), "{file}: duplicate ids");
    v
}

#[test]
fn remote_vectors() {
    let mut failures = Vec::new();
    for v in vectors("remotes.json") {
        let id = v["id"].as_str().unwrap();
        let url = v["url"].as_str().unwrap();
        let got = Remote::parse(url, v["allow_http"].as_bool().unwrap());
        match (v["valid"].as_bool().unwrap(), got) {
            (true, Ok(r)) => {
                let want = (
                    v["protocol"].as_str().unwrap(),
                    v["host"].as_str().unwrap(),
                    v["path"].as_str().unwrap(),
                );
                if (r.scheme(), r.host(), r.path()) != want {
                    failures.push(format!("{id}: got {r:?}, want {want:?}"));
                }
            }
            (false, Err(e)) => {
                if let Some((userinfo, _)) =
                    url.split_once("://").and_then(|(_, r)| r.split_once('@'))
                    && e.to_string().contains(userinfo)
                {
                    failures.push(format!("{id}: the error echoes the user-info"));
                }
            }
            (true, Err(e)) => failures.push(format!("{id}: refused ({e}), want accepted")),
            (false, Ok(r)) => failures.push(format!("{id}: accepted as {r:?}, want refused")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn credential_vectors() {
    let mut failures = Vec::new();
    for v in vectors("credential.json") {
        let id = v["id"].as_str().unwrap();
        let remote = Remote::parse(v["remote"].as_str().unwrap(), true).unwrap();
        let request = Description::parse(v["request"].as_str().unwrap()).unwrap();
        let want = v["answers"].as_bool().unwrap();
        if request_matches(&remote, &request) != want {
            failures.push(format!("{id}: answers = {}, want {want}", !want));
        }
    }
    assert!(
        failures.is_empty(),
        "{} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn host_binding_vectors() {
    let mut failures = Vec::new();
    for v in vectors("hosts.json") {
        let id = v["id"].as_str().unwrap();
        let remote = Remote::parse(v["url"].as_str().unwrap(), true)
            .unwrap_or_else(|e| panic!("{id}: the vector's url is not a valid remote: {e}"));
        let got = vaultref::git::remote::host_matches(v["bound"].as_str().unwrap(), &remote);
        if got != v["matches"].as_bool().unwrap() {
            failures.push(format!("{id}: got {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
