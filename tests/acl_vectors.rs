//! `fixtures/acl`: scope templates as Vault ACL path patterns
//! (`spec/secret-ref.md` §4.1), through `RefPolicy::vault_acl_paths`.

use serde_json::Value;
use vaultref::testing::vectors::{fixtures_dir, load_dir};
use vaultref::{RefPolicy, ScopeContext};

#[test]
fn every_acl_vector() {
    let files = load_dir(&fixtures_dir().join("acl")).unwrap();
    let mut n = 0;
    for v in files.iter().flat_map(|f| f.vectors()) {
        let id = v["id"].as_str().unwrap();
        let strings = |x: &Value| -> Vec<String> {
            x.as_array()
                .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
                .unwrap_or_default()
        };
        let mut policy = RefPolicy::default();
        if v.get("allowed_mounts").is_some() {
            policy = policy.with_allowed_mounts(strings(&v["allowed_mounts"]));
        }
        let policy = policy.with_scopes(strings(&v["scopes"])).unwrap();
        let ctx = ScopeContext {
            repository: v["context"]["repository"].as_str().map(str::to_owned),
            worker_id: v["context"]["worker_id"].as_str().map(str::to_owned),
        };
        let want = (!v["paths"].is_null()).then(|| strings(&v["paths"]));
        assert_eq!(policy.vault_acl_paths(&ctx), want, "{id}");
        n += 1;
    }
    assert!(n >= 8, "{n} vectors");
}
