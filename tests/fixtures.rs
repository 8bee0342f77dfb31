//! Every fixtures directory is documented and machine-checkable: it has a
//! README.md and a `vectors.schema.json`, and every vector file in it
//! follows that schema with unique ids (the one loader,
//! `vaultref::testing::vectors`, does the checking).

use std::collections::HashSet;

use vaultref::testing::vectors::{SCHEMA_FILE, fixtures_dir, load_dir};

#[test]
fn every_fixtures_directory_has_a_readme_a_schema_and_valid_vectors() {
    let mut dirs: Vec<_> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 5, "fixtures/ has {} directories", dirs.len());
    for dir in dirs {
        let name = dir.display();
        assert!(dir.join("README.md").is_file(), "{name} has no README.md");
        assert!(
            dir.join(SCHEMA_FILE).is_file(),
            "{name} has no {SCHEMA_FILE}"
        );
        let files = load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
        let mut ids = HashSet::new();
        for f in &files {
            assert!(!f.vectors().is_empty(), "{name}/{} has no vectors", f.name);
            for v in f.vectors() {
                let id = v["id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name}/{}: a vector without id", f.name));
                assert!(ids.insert(id.to_string()), "{name}: duplicate id {id}");
            }
        }
    }
}
