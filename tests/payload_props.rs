//! Properties of `payload::validate`.
//!
//! 1. Jobs generated valid (every member, in every combination, with unknown
//!    members) stay valid, and the typed job says what the JSON said.
//! 2. A token of any rule's shape planted in any string or member name of a
//!    valid job is always caught (`payload_contains_secret`), and the error
//!    output (JSON, `Display` and `Debug`) never contains it.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use vaultref::ErrorCode;
use vaultref::payload::{ValidationOptions, validate};

/// Lower-case words: no rule matches them, alone or as `name=value`.
fn word() -> impl Strategy<Value = String> {
    "[a-z]{1,8}"
}

fn segment() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-][A-Za-z0-9._-]{0,11}"
}

fn repository() -> impl Strategy<Value = (String, String)> {
    (segment(), segment(), 0..4u8).prop_map(|(owner, repo, form)| {
        let slug = format!("{owner}/{repo}");
        let written = match form {
            0 => slug.clone(),
            1 => format!("https://github.com/{slug}"),
            2 => format!("https://github.com/{slug}.git"),
            _ => format!("https://git.example:8443/{slug}/"),
        };
        // A slug written as `o/r.git` is taken as written; a URL loses `.git`.
        let expect = if form == 0 {
            slug
        } else {
            format!("{owner}/{}", repo.strip_suffix(".git").unwrap_or(&repo))
        };
        (written, expect)
    })
}

fn git_ref() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("main".to_string()),
        "[a-z]{1,8}(/[a-z0-9]{1,8}){0,3}",
        "v[0-9]{1,2}\\.[0-9]{1,2}\\.[0-9]{1,2}",
        "[0-9a-f]{40}",
    ]
}

fn auth_ref() -> impl Strategy<Value = String> {
    (
        segment(),
        segment(),
        prop::option::of(1..100u32),
        "[a-z_]{1,12}",
    )
        .prop_map(|(a, b, version, field)| {
            let a = a.replace('.', "x");
            let b = b.replace('.', "x");
            match version {
                Some(v) => format!("vault://kv/moonmind/{a}/{b}?version={v}#{field}"),
                None => format!("vault://kv/moonmind/{a}/{b}#{field}"),
            }
        })
}

prop_compose! {
    /// A valid job, the repository slug it should yield and its effective publish ref.
    fn valid_job()(
        (repository, slug) in repository(),
        instruction in prop::collection::vec(word(), 1..12),
        git_ref in prop::option::of(git_ref()),
        workdir in prop::option::of(prop_oneof![Just("fresh_clone"), Just("reuse")]),
        publish in prop::option::of((
            prop::option::of(prop_oneof![Just("none"), Just("branch"), Just("pr")]),
            prop::option::of(git_ref()),
        )),
        codex in prop::option::of((prop::option::of(word()), prop::option::of(word()))),
        repo_ref in prop::option::of(auth_ref()),
        publish_ref in prop::option::of(auth_ref()),
        extra in prop::collection::btree_map("x[a-z]{1,6}", word(), 0..3),
        envelope_extra in prop::option::of(word()),
    ) -> (Value, String, Option<String>) {
        let mut p = Map::new();
        p.insert("repository".into(), json!(repository));
        p.insert("instruction".into(), json!(instruction.join(" ")));
        if let Some(r) = git_ref { p.insert("ref".into(), json!(r)); }
        if let Some(w) = workdir { p.insert("workdirMode".into(), json!(w)); }
        if let Some((mode, base)) = publish {
            let mut o = Map::new();
            if let Some(m) = mode { o.insert("mode".into(), json!(m)); }
            if let Some(b) = base { o.insert("baseBranch".into(), json!(b)); }
            p.insert("publish".into(), Value::Object(o));
        }
        if let Some((model, effort)) = codex {
            let mut o = Map::new();
            if let Some(m) = model { o.insert("model".into(), json!(m)); }
            if let Some(e) = effort { o.insert("effort".into(), json!(e)); }
            p.insert("codex".into(), Value::Object(o));
        }
        if let Some(r) = &repo_ref { p.insert("repoAuthRef".into(), json!(r)); }
        if let Some(r) = &publish_ref { p.insert("publishAuthRef".into(), json!(r)); }
        for (k, v) in extra { p.insert(k, json!(v)); }
        let mut job = json!({"type": "codex_exec", "payload": p});
        if let Some(e) = envelope_extra { job["queueNote"] = json!(e); }
        let effective = publish_ref.or(repo_ref);
        (job, slug, effective)
    }
}

fn alnum(n: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".to_vec(),
        ),
        n,
    )
    .prop_map(|v| String::from_utf8(v).unwrap())
}

fn upper(n: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".to_vec()),
        n,
    )
    .prop_map(|v| String::from_utf8(v).unwrap())
}

/// A token of some rule's shape: (text to plant, the secret part of it).
fn token() -> impl Strategy<Value = (String, String)> {
    let same = |t: String| (t.clone(), t);
    prop_oneof![
        (
            prop_oneof![
                Just("ghp_"),
                Just("gho_"),
                Just("ghu_"),
                Just("ghs_"),
                Just("ghr_")
            ],
            alnum(36)
        )
            .prop_map(move |(p, s)| same(format!("{p}{s}"))),
        alnum(82).prop_map(move |s| same(format!("github_pat_{s}"))),
        alnum(30).prop_map(move |s| same(format!("hvs.{s}"))),
        alnum(24).prop_map(move |s| same(format!("s.{s}"))),
        upper(16).prop_map(move |s| same(format!("AKIA{s}"))),
        (alnum(12), alnum(12), alnum(10))
            .prop_map(move |(a, b, c)| same(format!("eyJ{a}.eyJ{b}.{c}"))),
        alnum(24).prop_map(move |s| same(format!("glpat-{s}"))),
        alnum(35).prop_map(move |s| same(format!("AIza{s}"))),
        alnum(40).prop_map(move |s| same(format!(
            "-----BEGIN PRIVATE KEY-----\n{s}\n-----END PRIVATE KEY-----"
        ))),
        alnum(20).prop_map(|s| (format!("https://bot:{s}@git.example/o/r"), s)),
    ]
}

/// Whether `shown` holds the secret or any 10 consecutive alphanumerics of
/// it: a partial echo (the tail of a token cut by a careless scrub) is a leak.
fn leaks(shown: &str, secret: &str) -> bool {
    if shown.contains(secret) {
        return true;
    }
    secret
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|run| run.len() >= 10)
        .any(|run| (0..=run.len() - 10).any(|i| shown.contains(&run[i..i + 10])))
}

/// Every place a string lives in `v`: (JSON pointer of the container path, is_key).
fn string_sites(v: &Value, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, bool)>) {
    match v {
        Value::String(_) => out.push((path.clone(), false)),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                path.push(i.to_string());
                string_sites(x, path, out);
                path.pop();
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                path.push(k.clone());
                out.push((path.clone(), true));
                string_sites(x, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn plant(job: &mut Value, site: &(Vec<String>, bool), text: &str, form: u8) {
    let (path, is_key) = site;
    // Forms 0-2 put the token in the text; form 3 builds a text that other
    // steps' messages quote (a ref's mount, a reserved `*AuthRef` name), so
    // the scrubbing of those messages is exercised, not only the lint.
    let wrap = |old: &str| match (form, *is_key) {
        (0, _) => text.to_string(),
        (1, _) => format!("{old} {text}"),
        (2, _) => format!("{text} {old}"),
        (_, true) => format!("{text} xAuthRef"),
        (_, false) => format!("vault://{text}/x#token"),
    };
    let (last, parents) = path.split_last().expect("sites have a path");
    let mut cur = job;
    for p in parents {
        cur = match cur {
            Value::Object(m) => m.get_mut(p).unwrap(),
            Value::Array(a) => &mut a[p.parse::<usize>().unwrap()],
            _ => unreachable!(),
        };
    }
    match cur {
        Value::Object(m) if *is_key => {
            let value = m.remove(last).unwrap();
            m.insert(wrap(last), value);
        }
        Value::Object(m) => {
            let old = m[last].as_str().unwrap().to_string();
            m[last] = Value::String(wrap(&old));
        }
        Value::Array(a) => {
            let i: usize = last.parse().unwrap();
            let old = a[i].as_str().unwrap().to_string();
            a[i] = Value::String(wrap(&old));
        }
        _ => unreachable!(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn generated_valid_jobs_stay_valid((job, slug, effective) in valid_job()) {
        let bytes = serde_json::to_vec(&job).unwrap();
        let typed = match validate(&bytes, &ValidationOptions::default()) {
            Ok(t) => t,
            Err(errors) => return Err(TestCaseError::fail(format!("{job}\n{errors:?}"))),
        };
        prop_assert_eq!(typed.repository(), job["payload"]["repository"].as_str().unwrap());
        prop_assert_eq!(typed.repository_slug(), Some(slug));
        prop_assert_eq!(typed.publish_auth_ref().map(|r| r.to_string()), effective);
        prop_assert_eq!(typed.instruction(), job["payload"]["instruction"].as_str().unwrap());
        // The typed job serialises back to the known members of the input.
        let back = serde_json::to_value(&typed).unwrap();
        prop_assert_eq!(&back["payload"]["repository"], &job["payload"]["repository"]);
        prop_assert_eq!(&back["payload"]["repoAuthRef"], job["payload"].get("repoAuthRef").unwrap_or(&Value::Null));
    }

    #[test]
    fn a_planted_token_is_caught_and_never_echoed(
        (job, _, _) in valid_job(),
        (text, secret) in token(),
        site_pick in any::<prop::sample::Index>(),
        form in 0..4u8,
    ) {
        let mut job = job;
        let mut sites = Vec::new();
        string_sites(&job, &mut Vec::new(), &mut sites);
        let site = site_pick.get(&sites).clone();
        plant(&mut job, &site, &text, form);
        let bytes = serde_json::to_vec(&job).unwrap();
        let errors = match validate(&bytes, &ValidationOptions::default()) {
            Ok(_) => return Err(TestCaseError::fail(format!("accepted a job with a token at {site:?}"))),
            Err(e) => e,
        };
        prop_assert!(
            errors.iter().any(|e| e.code == ErrorCode::PayloadContainsSecret),
            "no payload_contains_secret for a token at {:?}: {:?}", site, errors
        );
        let shown = format!(
            "{}\n{}\n{:?}",
            serde_json::to_string(&errors).unwrap(),
            errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"),
            errors
        );
        prop_assert!(!leaks(&shown, &secret), "the output echoes the token: {}", shown);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Two tokens, the second often built from a piece of the first, so that
    /// one secret sits inside another (the case that once leaked a tail when
    /// secrets were scrubbed one at a time).
    #[test]
    fn overlapping_planted_tokens_are_never_echoed(
        (job, _, _) in valid_job(),
        (text, secret) in token(),
        second in prop_oneof![token().prop_map(Some), Just(None)],
        picks in (any::<prop::sample::Index>(), any::<prop::sample::Index>()),
        forms in (0..4u8, 0..4u8),
    ) {
        let mut job = job;
        let (text2, secret2) = match second {
            Some(t) => t,
            None => {
                // A bearer token whose value is the last 20 characters of the
                // first secret's longest alphanumeric run: a secret inside a
                // secret. The bearer rule needs 16 characters; with fewer, a
                // piece is no secret of any rule, so plant the token twice.
                let run = secret
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .max_by_key(|r| r.len())
                    .unwrap_or_default();
                if run.len() >= 16 {
                    let piece = run[run.len().saturating_sub(20)..].to_string();
                    (format!("Bearer {piece}"), piece)
                } else {
                    (text.clone(), secret.clone())
                }
            }
        };
        let mut sites = Vec::new();
        string_sites(&job, &mut Vec::new(), &mut sites);
        plant(&mut job, picks.0.get(&sites), &text, forms.0);
        let mut sites = Vec::new();
        string_sites(&job, &mut Vec::new(), &mut sites);
        plant(&mut job, picks.1.get(&sites), &text2, forms.1);
        let bytes = serde_json::to_vec(&job).unwrap();
        let errors = validate(&bytes, &ValidationOptions::default())
            .expect_err("a job with two tokens is invalid");
        let shown = format!(
            "{}\n{}",
            serde_json::to_string(&errors).unwrap(),
            errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"),
        );
        prop_assert!(!leaks(&shown, &secret), "first token echoed: {}", shown);
        prop_assert!(!leaks(&shown, &secret2), "second token echoed: {}", shown);
    }
}
