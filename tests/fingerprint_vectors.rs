//! `fixtures/fingerprint/` (spec `resolver.md` §6) against
//! `FingerprintKey`, loaded through the one vector loader.

use secrecy::SecretString;
use vaultref::testing::vectors::{fixtures_dir, load_dir};
use vaultref::vault::FingerprintKey;

#[test]
fn every_fingerprint_vector() {
    let files = load_dir(&fixtures_dir().join("fingerprint")).unwrap_or_else(|e| panic!("{e}"));
    let mut seen = 0;
    for v in files.iter().flat_map(|f| f.vectors()) {
        let s = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("{}: no {k}", v["id"]))
        };
        let key = FingerprintKey::from_hex(s("key_hex")).unwrap();
        assert_eq!(
            key.fingerprint(&SecretString::from(s("value"))),
            s("fingerprint"),
            "{}",
            s("id")
        );
        seen += 1;
    }
    assert!(seen >= 4, "{seen} fingerprint vectors");
}
