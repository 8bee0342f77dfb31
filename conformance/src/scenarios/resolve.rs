//! `resolve` scenarios: what a ref resolves to, how each Vault answer is
//! classified (`resolver.md` V3, V4), and what is refused before any Vault
//! request (V1).
//!
//! Most scenarios have one shape (provision, resolve one ref, expect a value
//! or a code), so they are rows of [`CASES`]; the few that look at the audit
//! log in their own way have bodies of their own below the table.

use serde_json::json;

use super::support::{
    AUDIT, Auth, VAULT, and, expect_code, expect_no_vault_request, expect_value, own_prefix,
    own_scope, put_versions, read_policy, resolve, resolve_token, session, verr,
};
use crate::backend::{JOB_ID_HEADER, KV_MOUNT, OTHER_MOUNT, random_hex};
use crate::cx::Cx;
use crate::live_scenario;
use crate::scenario::{Level, Needs, Profile, Scenario};
use vaultref::testing::hostile::{Answer, HostileVault};

use super::hostile::{expect_unavailable_in_time, front_session, login_ok, login_path};
use crate::verdict::{Failure, Verdict};

/// What a table row provisions at `<prefix>/app`, field `token`.
#[derive(Clone, Copy)]
pub enum Provision {
    /// Nothing at all.
    Nothing,
    /// This many versions (each a fresh fake token).
    Versions(usize),
    /// Two versions, the first soft-deleted.
    FirstDeleted,
    /// Two versions, the first destroyed.
    FirstDestroyed,
}

/// What the session's read policy covers (under the scenario's prefix).
#[derive(Clone, Copy)]
pub enum Readable {
    /// `<prefix>/*`: everything the scenario wrote.
    Own,
    /// `<prefix>/<glob>` only.
    Only(&'static str),
}

/// What a table row expects.
#[derive(Clone, Copy)]
pub enum Expect {
    /// The fingerprint of version N (1-based) of the provisioned token.
    Version(usize),
    /// Failed with this code.
    Code(&'static str),
    /// Failed with this code, and no Vault read under the prefix (audit log).
    CodeBeforeVault(&'static str),
}

/// One scenario of the common shape: provision, configure, resolve, expect.
pub struct Case {
    /// Scenario id.
    pub id: &'static str,
    /// Its profile.
    pub profile: Profile,
    /// MUST or SHOULD.
    pub level: Level,
    /// The spec section it checks.
    pub spec: &'static str,
    /// One line for people.
    pub title: &'static str,
    /// The requirement a failure names.
    pub requirement: &'static str,
    /// What is written to Vault first.
    pub provision: Provision,
    /// How the implementation authenticates.
    pub auth: Auth,
    /// What its policy may read.
    pub readable: Readable,
    /// The ref, from the scenario prefix and the provisioned path.
    pub reference: fn(prefix: &str, path: &str) -> String,
    /// The expected outcome.
    pub expect: Expect,
}

const TOKEN: Auth = Auth::Token { ttl: "10m" };

/// The `resolve` rows.
const CASES: &[Case] = &[
    Case {
        id: "resolve.latest",
        profile: Profile::Resolve,
        level: Level::Must,
        spec: "secret-ref.md §1 (no version: latest)",
        title: "An unpinned ref resolves to the latest version",
        requirement: "secret-ref.md §1: a ref without a version resolves to the latest version",
        provision: Provision::Versions(2),
        auth: TOKEN,
        readable: Readable::Own,
        reference: |_, path| format!("vault://kv/{path}#token"),
        expect: Expect::Version(2),
    },
    Case {
        id: "resolve.pinned-version",
        profile: Profile::Resolve,
        level: Level::Must,
        spec: "secret-ref.md §1 (version pins)",
        title: "A ref with ?version=1 resolves to version 1 after rotation",
        requirement: "secret-ref.md §1: a pinned ref resolves to that version",
        provision: Provision::Versions(2),
        auth: TOKEN,
        readable: Readable::Own,
        reference: |_, path| format!("vault://kv/{path}?version=1#token"),
        expect: Expect::Version(1),
    },
    Case {
        id: "resolve.secret-missing",
        profile: Profile::Resolve,
        level: Level::Must,
        spec: "errors.md secret_not_found",
        title: "Nothing at the path: secret_not_found",
        requirement: "errors.md: nothing at the path is secret_not_found",
        provision: Provision::Nothing,
        auth: TOKEN,
        readable: Readable::Own,
        reference: |prefix, _| format!("vault://kv/{prefix}/nothing#token"),
        expect: Expect::Code("secret_not_found"),
    },
    Case {
        id: "resolve.field-missing",
        profile: Profile::Resolve,
        level: Level::Must,
        spec: "errors.md secret_field_missing",
        title: "The secret has no such field: secret_field_missing",
        requirement: "errors.md: a missing field is secret_field_missing",
        provision: Provision::Versions(1),
        auth: TOKEN,
        readable: Readable::Own,
        reference: |_, path| format!("vault://kv/{path}#nope"),
        expect: Expect::Code("secret_field_missing"),
    },
    Case {
        id: "resolve.version-deleted",
        profile: Profile::Resolve,
        level: Level::Must,
        spec: "errors.md secret_version_deleted",
        title: "A soft-deleted version: secret_version_deleted",
        requirement: "errors.md: a soft-deleted version is secret_version_deleted",
        provision: Provision::FirstDeleted,
        auth: TOKEN,
        readable: Readable::Own,
        reference: |_, path| format!("vault://kv/{path}?version=1#token"),
        expect: Expect::Code("secret_version_deleted"),
    },
    Case {
        id: "resolve.version-destroyed",
        profile: Profile::Resolve,
        level: Level::Must,
        spec: "errors.md secret_version_destroyed",
        title: "A destroyed version: secret_version_destroyed",
        requirement: "errors.md: a destroyed version is secret_version_destroyed",
        provision: Provision::FirstDestroyed,
        auth: TOKEN,
        readable: Readable::Own,
        reference: |_, path| format!("vault://kv/{path}?version=1#token"),
        expect: Expect::Code("secret_version_destroyed"),
    },
    Case {
        id: "resolve.denied-path",
        profile: Profile::Resolve,
        level: Level::Must,
        spec: "errors.md vault_permission_denied",
        title: "The policy allows only another path: vault_permission_denied",
        requirement: "errors.md: a policy denial with a live token is vault_permission_denied",
        provision: Provision::Versions(1),
        auth: TOKEN,
        readable: Readable::Only("allowed/*"),
        reference: |_, path| format!("vault://kv/{path}#token"),
        expect: Expect::Code("vault_permission_denied"),
    },
    Case {
        id: "resolve.traversal",
        profile: Profile::Resolve,
        level: Level::Must,
        spec: "secret-ref.md R8, protocol.md §3.5",
        title: "A traversal ref is refused before any Vault request",
        requirement: "secret-ref.md R8: `..` is ref_traversal; resolver.md V1: before any Vault request",
        provision: Provision::Nothing,
        auth: TOKEN,
        readable: Readable::Own,
        reference: |prefix, _| format!("vault://kv/{prefix}/a/../app#token"),
        expect: Expect::CodeBeforeVault("ref_traversal"),
    },
    Case {
        id: "resolve.over-length",
        profile: Profile::Resolve,
        level: Level::Must,
        spec: "secret-ref.md R2, protocol.md §3.5",
        title: "A 513-byte ref is refused before any Vault request",
        requirement: "secret-ref.md R2: over 512 bytes is ref_too_long; resolver.md V1: before any Vault request",
        provision: Provision::Nothing,
        auth: TOKEN,
        readable: Readable::Own,
        reference: |prefix, _| {
            let head = format!("vault://kv/{prefix}/");
            let pad = 513 - head.len() - "#token".len();
            format!("{head}{}#token", "a".repeat(pad))
        },
        expect: Expect::CodeBeforeVault("ref_too_long"),
    },
];

/// Runs one [`Case`].
async fn run_case(cx: &Cx, case: &Case) -> Result<Verdict, Verdict> {
    let values: Vec<_> = match case.provision {
        Provision::Nothing => Vec::new(),
        Provision::Versions(n) => (0..n).map(|_| cx.fake_token()).collect(),
        Provision::FirstDeleted | Provision::FirstDestroyed => {
            vec![cx.fake_token(), cx.fake_token()]
        }
    };
    let path = if values.is_empty() {
        format!("{}/app", cx.prefix())
    } else {
        put_versions(cx, &values.iter().collect::<Vec<_>>()).await?
    };
    let admin = &cx.vault()?.admin;
    match case.provision {
        Provision::FirstDeleted => admin.kv_delete_versions(KV_MOUNT, &path, &[1]).await,
        Provision::FirstDestroyed => admin.kv_destroy_versions(KV_MOUNT, &path, &[1]).await,
        _ => Ok(()),
    }
    .map_err(verr)?;
    let readable = match case.readable {
        Readable::Own => own_scope(cx).to_vec(),
        Readable::Only(glob) => vec![format!("{}/{glob}", cx.prefix())],
    };
    let mut s = session(cx, &readable, case.auth, None).await?;
    let reference = (case.reference)(&cx.prefix(), &path);
    let job_id = format!("job-{}", case.id.rsplit('.').next().unwrap_or("case"));
    let r = resolve(&mut s, &reference, &job_id, None).await?;
    Ok(match case.expect {
        Expect::Version(n) => expect_value(
            case.requirement,
            &r,
            &s.key,
            &values[n - 1],
            &format!("version {n}"),
        ),
        Expect::Code(code) => expect_code(case.requirement, &r, code),
        Expect::CodeBeforeVault(code) => and(
            expect_code(case.requirement, &r, code),
            expect_no_vault_request(
                cx,
                "resolver.md V1: syntax and policy are checked before any Vault request",
            ),
        ),
    })
}

/// Scenarios for a table of [`Case`]s.
pub fn from_cases(cases: &'static [Case]) -> Vec<Scenario> {
    cases
        .iter()
        .map(|case| {
            let needs = match case.expect {
                Expect::CodeBeforeVault(_) => AUDIT,
                _ => VAULT,
            };
            Scenario::live(
                case.id,
                case.profile,
                case.level,
                case.spec,
                case.title,
                needs,
                live_scenario!(cx, { run_case(&cx, case).await }),
            )
        })
        .collect()
}

/// Every `resolve` scenario.
pub fn scenarios() -> Vec<Scenario> {
    let mut all = from_cases(CASES);
    all.extend([
        Scenario::live(
            "resolve.mount-not-allowed",
            Profile::Resolve,
            Level::Must,
            "secret-ref.md §4, protocol.md §3.5",
            "A ref on a mount outside the allow-list is refused before any Vault request",
            AUDIT,
            live_scenario!(cx, { mount_not_allowed(&cx).await }),
        ),
        Scenario::live(
            "resolve.out-of-scope",
            Profile::Resolve,
            Level::Must,
            "secret-ref.md §4 scopes, protocol.md §3.5",
            "A job for one repository cannot name another's credential",
            AUDIT,
            live_scenario!(cx, { out_of_scope(&cx).await }),
        ),
        Scenario::live(
            "resolve.least-privilege",
            Profile::Resolve,
            Level::Should,
            "resolver.md V2 (least privilege)",
            "Resolving reads only the referenced secret, though the token could read more",
            AUDIT,
            live_scenario!(cx, { least_privilege(&cx).await }),
        ),
        Scenario::live(
            "resolve.job-id-header",
            Profile::Resolve,
            Level::Should,
            "protocol.md §3.2 job_id_header",
            "The job id is sent with Vault requests and shows in the audit log",
            AUDIT,
            live_scenario!(cx, { job_id_header(&cx).await }),
        ),
    ]);
    all.push(Scenario::live(
        "resolve.field-case",
        Profile::Resolve,
        Level::Must,
        "secret-ref.md §1 (the field is compared exactly)",
        "Fields token and Token hold different values: #Token gives Token's, #TOKEN is secret_field_missing",
        VAULT,
        live_scenario!(cx, { field_case(&cx).await }),
    ));
    all.extend(STATUS_ANSWERS.iter().map(|a| {
        Scenario::live(
            a.id,
            Profile::Resolve,
            Level::Must,
            "resolver.md V3, V6",
            a.title,
            Needs::default(),
            live_scenario!(cx, { status_answer(&cx, a).await }),
        )
    }));
    all
}

/// A Vault answer that is neither a value nor a refusal: the read gets it.
struct StatusAnswer {
    id: &'static str,
    title: &'static str,
    status: u16,
    body: &'static str,
}

/// What an overloaded, failing or sealed server answers (OpenBao's own
/// bodies). Each is `vault_unavailable`, at once, with no second read.
const STATUS_ANSWERS: &[StatusAnswer] = &[
    StatusAnswer {
        id: "resolve.server-error",
        title: "Vault answers 500 to the read: vault_unavailable (not \"not found\"), one read, no retry",
        status: 500,
        body: r#"{"errors":["internal error"]}"#,
    },
    StatusAnswer {
        id: "resolve.rate-limited",
        title: "Vault answers 429 to the read: vault_unavailable, one read, no retry",
        status: 429,
        body: r#"{"errors":["request path \"kv/data/app\": rate limit quota exceeded"]}"#,
    },
    StatusAnswer {
        id: "resolve.sealed",
        title: "Vault answers 503 sealed to the read: vault_unavailable, one read, no retry",
        status: 503,
        body: r#"{"errors":["Vault is sealed"]}"#,
    },
];

/// A fake server that logs in fine and answers the read with `a`: the IUT
/// says `vault_unavailable` in time, and reads once (V6: no retry; V3: no
/// `lookup-self`, which is for 403 only).
async fn status_answer(cx: &Cx, a: &StatusAnswer) -> Result<Verdict, Verdict> {
    let spec = "resolver.md V3: 429 and 5xx are vault_unavailable; V6: no retry";
    let token = cx.fake_token();
    let login = login_path();
    let front = HostileVault::start(&[
        (login.as_str(), login_ok(&token)),
        ("kv/data/app", Answer::Json(a.status, a.body.into())),
    ])
    .map_err(verr)?;
    let mut s = front_session(cx, &front.url()).await?;
    let v = expect_unavailable_in_time(&mut s, "vault://kv/app#token", spec).await?;
    let _ = s.iut.shutdown().await;
    let requests = front.requests();
    let reads = requests
        .iter()
        .filter(|(_, p)| p.contains("kv/data/app"))
        .count();
    let lookups = requests
        .iter()
        .filter(|(_, p)| p.contains("lookup-self"))
        .count();
    Ok(and(
        v,
        if reads == 1 && lookups == 0 {
            Verdict::Pass
        } else {
            Verdict::Fail(Failure::new(
                spec,
                "one read of kv/data/app, no lookup-self",
                format!("{reads} read(s), {lookups} lookup(s)"),
            ))
        },
    ))
}

/// The secret really exists on another KV mount, and the token may read it,
/// so an implementation that skips the allow-list would read it.
async fn mount_not_allowed(cx: &Cx) -> Result<Verdict, Verdict> {
    let v1 = cx.fake_token();
    let path = format!("{}/app", cx.prefix());
    let admin = &cx.vault()?.admin;
    admin
        .kv_put(OTHER_MOUNT, &path, &[("token", &v1)])
        .await
        .map_err(verr)?;
    let mut s = own_prefix(cx).await?;
    let other = format!(
        "path \"{OTHER_MOUNT}/data/{}/*\" {{ capabilities = [\"read\"] }}\n",
        cx.prefix()
    );
    admin
        .put_policy(
            &cx.name("read"),
            &format!("{}{other}", read_policy(&own_scope(cx))),
        )
        .await
        .map_err(verr)?;
    let r = resolve(
        &mut s,
        &format!("vault://{OTHER_MOUNT}/{path}#token"),
        "job-mount",
        None,
    )
    .await?;
    Ok(and(
        expect_code(
            "secret-ref.md §4: a mount outside the allow-list is ref_mount_not_allowed",
            &r,
            "ref_mount_not_allowed",
        ),
        expect_no_vault_request(
            cx,
            "protocol.md §3.5: policy is applied before any Vault request",
        ),
    ))
}

/// Another repository's credential exists and is readable by the token; only
/// the scope template bound to the job's repository stops it.
async fn out_of_scope(cx: &Cx) -> Result<Verdict, Verdict> {
    let v1 = cx.fake_token();
    let other = format!("{}/repos/Acme/Other", cx.prefix());
    cx.vault()?
        .admin
        .kv_put(KV_MOUNT, &other, &[("github_token", &v1)])
        .await
        .map_err(verr)?;
    let scope = format!("{}/repos/{{repository}}", cx.prefix());
    let mut s = session(
        cx,
        &[
            format!("{}/*", cx.prefix()),
            format!("{}/repos/*/*", cx.prefix()),
        ],
        TOKEN,
        Some(json!({"allowed_mounts": ["kv"], "scopes": [scope]})),
    )
    .await?;
    let r = resolve(
        &mut s,
        &format!("vault://kv/{other}#github_token"),
        "job-scope",
        Some("Acme/Api"),
    )
    .await?;
    Ok(and(
        expect_code(
            "secret-ref.md §4: a path outside the job's scopes is ref_out_of_scope",
            &r,
            "ref_out_of_scope",
        ),
        expect_no_vault_request(
            cx,
            "protocol.md §3.5: scopes are checked before any Vault request",
        ),
    ))
}

/// The token may read the prefix itself and a sibling; only the referenced
/// path (and its metadata) may be read.
async fn least_privilege(cx: &Cx) -> Result<Verdict, Verdict> {
    let (v1, other) = (cx.fake_token(), cx.fake_token());
    let path = put_versions(cx, &[&v1]).await?;
    let vault = cx.vault()?;
    let prefix = cx.prefix();
    for extra in [prefix.clone(), format!("{prefix}/sibling")] {
        vault
            .admin
            .kv_put(KV_MOUNT, &extra, &[("token", &other)])
            .await
            .map_err(verr)?;
    }
    let mut s = session(cx, &[prefix.clone(), format!("{prefix}/*")], TOKEN, None).await?;
    let r = resolve_token(&mut s, &path, "job-least").await?;
    let first = expect_value("resolve works", &r, &s.key, &v1, "the value");
    if first != Verdict::Pass {
        return Ok(first);
    }
    let allowed = [
        format!("{KV_MOUNT}/data/{path}"),
        format!("{KV_MOUNT}/metadata/{path}"),
    ];
    let extra: Vec<String> = vault
        .iut_requests(&prefix)
        .unwrap_or_default()
        .iter()
        .map(|e| e.path().to_string())
        .filter(|p| !allowed.contains(p))
        .collect();
    Ok(if extra.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail(Failure::new(
            "resolver.md V2: read only the referenced path (least privilege, SHOULD)",
            format!("only {} (and its metadata)", allowed[0]),
            format!("also {}", extra.join(", ")),
        ))
    })
}

async fn job_id_header(cx: &Cx) -> Result<Verdict, Verdict> {
    let v1 = cx.fake_token();
    let path = put_versions(cx, &[&v1]).await?;
    let mut s = own_prefix(cx).await?;
    let job = format!("job-{}", random_hex(4));
    let r = resolve_token(&mut s, &path, &job).await?;
    let first = expect_value("resolve works", &r, &s.key, &v1, "the value");
    if first != Verdict::Pass {
        return Ok(first);
    }
    let entries = cx.vault()?.audit_requests(&path).unwrap_or_default();
    let seen = entries
        .iter()
        .any(|e| e.header(JOB_ID_HEADER) == Some(job.as_str()));
    if !seen {
        return Ok(Verdict::Fail(Failure::new(
            "protocol.md §3.2: the job id SHOULD be sent in the job id header",
            format!("an audit entry for the read with header {JOB_ID_HEADER}: {job}"),
            format!(
                "{} audit entries for the path, none with the job id",
                entries.len()
            ),
        )));
    }
    // V8: on every request made for the job, the lookup too. A path the
    // token may not read gets a 403, which V4 tells apart with lookup-self.
    let denied_job = format!("job-{}", random_hex(4));
    let denied = format!("vault://kv/{}-denied/app#token", cx.prefix());
    let r = resolve(&mut s, &denied, &denied_job, None).await?;
    let v = expect_code("resolver.md V4", &r, "vault_permission_denied");
    if v != Verdict::Pass {
        return Ok(v);
    }
    let lookups = cx
        .vault()?
        .audit_requests("auth/token/lookup-self")
        .unwrap_or_default();
    Ok(
        if lookups
            .iter()
            .any(|e| e.header(JOB_ID_HEADER) == Some(denied_job.as_str()))
        {
            Verdict::Pass
        } else {
            Verdict::Fail(Failure::new(
                "resolver.md V8: the job id goes with every request made for the job, the lookup included",
                format!("a lookup-self audit entry with header {JOB_ID_HEADER}: {denied_job}"),
                "no lookup-self request carried the job id",
            ))
        },
    )
}

/// Two fields that differ only in case: each ref gets exactly its own.
async fn field_case(cx: &Cx) -> Result<Verdict, Verdict> {
    let spec = "secret-ref.md §1: the field name is matched exactly, case included";
    let (lower, upper) = (cx.fake_token(), cx.fake_token());
    let path = format!("{}/cased", cx.prefix());
    cx.vault()?
        .admin
        .kv_put(KV_MOUNT, &path, &[("token", &lower), ("Token", &upper)])
        .await
        .map_err(verr)?;
    let mut s = own_prefix(cx).await?;
    let r = resolve(
        &mut s,
        &format!("vault://kv/{path}#Token"),
        "job-case-1",
        None,
    )
    .await?;
    let exact = expect_value(spec, &r, &s.key, &upper, "field Token's value");
    let r = resolve(
        &mut s,
        &format!("vault://kv/{path}#TOKEN"),
        "job-case-2",
        None,
    )
    .await?;
    let missing = expect_code(spec, &r, "secret_field_missing");
    Ok(and(exact, missing))
}
