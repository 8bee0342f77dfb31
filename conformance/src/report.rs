//! Reports: JSON (everything, for machines), JUnit XML (for CI dashboards),
//! Markdown (for people and PR comments), and the console summary.
//!
//! All three are written from the same [`RunOutcome`]; none contains secret
//! material because results never do (failures name requirements, codes and
//! encodings, never values).

use std::fmt::Write as _;
use std::path::Path;

use serde_json::json;

use crate::runner::{RunOutcome, as_expected, tally};
use crate::scenario::Profile;
use crate::verdict::{ScenarioResult, Status};

/// The JSON report.
pub fn json(outcome: &RunOutcome) -> serde_json::Value {
    json!({
        "suite": {"name": "vaultref-conformance", "version": crate::SUITE_VERSION},
        "protocol": crate::iut::PROTOCOL_VERSION,
        "backend": outcome.backend,
        "vault_version": outcome.vault_version,
        "implementation": outcome.hello,
        "duration_ms": outcome.duration.as_millis() as u64,
        "as_expected": as_expected(&outcome.results),
        "counts": tally(&outcome.results).into_iter()
            .map(|(s, n)| (s.as_str().to_string(), json!(n)))
            .collect::<serde_json::Map<_, _>>(),
        "unmatched_expectations": outcome.unmatched_expectations,
        "results": outcome.results,
    })
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 cannot carry most control characters at all.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// [`xml_escape`] for attribute values: newlines kept as `&#10;` (an XML
/// parser turns a raw newline in an attribute into a space).
fn xml_attr(s: &str) -> String {
    xml_escape(s).replace('\n', "&#10;").replace('\r', "&#13;")
}

/// Control characters made visible, for Markdown and the console.
fn visible(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\n' {
                format!("\\x{:02x}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The JUnit XML report: one test suite per profile, one test case per scenario.
pub fn junit(outcome: &RunOutcome) -> String {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let failures = outcome
        .results
        .iter()
        .filter(|r| matches!(r.status, Status::Fail | Status::UnexpectedPass))
        .count();
    let errors = outcome
        .results
        .iter()
        .filter(|r| r.status == Status::Error)
        .count();
    let _ = writeln!(
        x,
        "<testsuites name=\"vaultref-conformance\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{:.3}\">",
        outcome.results.len(),
        outcome.duration.as_secs_f64()
    );
    for &profile in Profile::ALL {
        let rs: Vec<&ScenarioResult> = outcome
            .results
            .iter()
            .filter(|r| r.meta.profile == profile)
            .collect();
        if rs.is_empty() {
            continue;
        }
        let f = rs
            .iter()
            .filter(|r| matches!(r.status, Status::Fail | Status::UnexpectedPass))
            .count();
        let e = rs.iter().filter(|r| r.status == Status::Error).count();
        let s = rs
            .iter()
            .filter(|r| {
                matches!(
                    r.status,
                    Status::Skip | Status::Unsupported | Status::ExpectedFail
                )
            })
            .count();
        let _ = writeln!(
            x,
            "  <testsuite name=\"{profile}\" tests=\"{}\" failures=\"{f}\" errors=\"{e}\" skipped=\"{s}\">",
            rs.len()
        );
        for r in rs {
            let _ = write!(
                x,
                "    <testcase classname=\"{profile}\" name=\"{}\" time=\"{:.3}\"",
                xml_escape(&r.meta.id),
                r.duration_ms as f64 / 1000.0
            );
            let detail = detail(r);
            // The children: what the scenario measured (JUnit's per-test-case
            // properties), then the failure, error or skip.
            let mut inner = String::new();
            if !r.measured.is_empty() {
                inner.push_str("      <properties>\n");
                for (name, value) in &r.measured {
                    let _ = writeln!(
                        inner,
                        "        <property name=\"{}\" value=\"{value}\"/>",
                        xml_attr(name)
                    );
                }
                inner.push_str("      </properties>\n");
            }
            match r.status {
                Status::Pass => {}
                Status::Fail | Status::UnexpectedPass => {
                    let _ = writeln!(
                        inner,
                        "      <failure message=\"{}\">{}</failure>",
                        xml_attr(&format!("{} ({} {})", r.status, r.meta.level, r.meta.spec)),
                        xml_escape(&detail)
                    );
                }
                Status::Error => {
                    let _ = writeln!(inner, "      <error message=\"{}\"/>", xml_attr(&detail));
                }
                Status::Skip | Status::Unsupported | Status::ExpectedFail => {
                    let _ = writeln!(
                        inner,
                        "      <skipped message=\"{}\"/>",
                        xml_attr(&format!("{}: {detail}", r.status))
                    );
                }
            }
            if inner.is_empty() {
                x.push_str("/>\n");
            } else {
                let _ = write!(x, ">\n{inner}    </testcase>\n");
            }
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}

/// What went wrong (or why it was not run), on one or more lines.
pub fn detail(r: &ScenarioResult) -> String {
    let mut d = String::new();
    if let Some(f) = &r.failure {
        let _ = write!(
            d,
            "requirement: {}\nexpected: {}\nactual: {}",
            f.requirement, f.expected, f.actual
        );
    }
    if let Some(reason) = &r.reason {
        if !d.is_empty() {
            d.push('\n');
        }
        d.push_str(reason);
    }
    d
}

/// Per-profile counts, as (profile, [count per status in `Status::ALL` order]).
fn by_profile(results: &[ScenarioResult]) -> Vec<(Profile, Vec<usize>)> {
    Profile::ALL
        .iter()
        .filter_map(|&p| {
            let rs: Vec<&ScenarioResult> = results.iter().filter(|r| r.meta.profile == p).collect();
            (!rs.is_empty()).then(|| {
                (
                    p,
                    Status::ALL
                        .iter()
                        .map(|&s| rs.iter().filter(|r| r.status == s).count())
                        .collect(),
                )
            })
        })
        .collect()
}

/// The Markdown report.
pub fn markdown(outcome: &RunOutcome) -> String {
    let mut m = String::from("# vaultref conformance report\n\n");
    let imp = &outcome.hello["implementation"];
    let _ = writeln!(
        m,
        "- implementation: {} {}\n- suite: vaultref-conformance {} (protocol {})\n- backend: {}{}\n- duration: {:.1} s\n- result: **{}**\n",
        imp["name"].as_str().unwrap_or("?"),
        imp["version"].as_str().unwrap_or("?"),
        crate::SUITE_VERSION,
        crate::iut::PROTOCOL_VERSION,
        outcome.backend,
        outcome
            .vault_version
            .as_deref()
            .map(|v| format!(" (Vault {v})"))
            .unwrap_or_default(),
        outcome.duration.as_secs_f64(),
        if as_expected(&outcome.results) {
            "as expected"
        } else {
            "NOT as expected"
        },
    );
    m.push_str("| profile |");
    for s in Status::ALL {
        let _ = write!(m, " {s} |");
    }
    m.push_str("\n|---|");
    m.push_str(&"---:|".repeat(Status::ALL.len()));
    m.push('\n');
    for (p, counts) in by_profile(&outcome.results) {
        let _ = write!(m, "| {p} |");
        for c in counts {
            let _ = write!(m, " {c} |");
        }
        m.push('\n');
    }
    let notable: Vec<&ScenarioResult> = outcome
        .results
        .iter()
        .filter(|r| r.status != Status::Pass)
        .collect();
    if !notable.is_empty() {
        m.push_str(
            "\n## Not passed\n\n| id | status | level | spec | detail |\n|---|---|---|---|---|\n",
        );
        for r in notable {
            let _ = writeln!(
                m,
                "| `{}` | {} | {} | {} | {} |",
                r.meta.id,
                r.status,
                r.meta.level,
                r.meta.spec,
                visible(&detail(r))
                    .replace('|', "\\|")
                    .replace('\n', "<br>")
            );
        }
    }
    let measured: Vec<&ScenarioResult> = outcome
        .results
        .iter()
        .filter(|r| !r.measured.is_empty())
        .collect();
    if !measured.is_empty() {
        m.push_str("\n## Measured\n\n| id | status | measure | value |\n|---|---|---|---:|\n");
        for r in measured {
            for (name, value) in &r.measured {
                let _ = writeln!(m, "| `{}` | {} | {name} | {value} |", r.meta.id, r.status);
            }
        }
    }
    if !outcome.unmatched_expectations.is_empty() {
        m.push_str("\n## Expectations that matched nothing\n\n");
        for e in &outcome.unmatched_expectations {
            let _ = writeln!(m, "- `{e}`");
        }
    }
    m
}

/// The console summary: failures with requirement, expected and actual, then
/// the table by profile.
pub fn console(outcome: &RunOutcome) -> String {
    let mut c = String::new();
    for r in outcome.results.iter().filter(|r| r.status.is_bad()) {
        let _ = writeln!(
            c,
            "{} {} [{} {}]",
            r.status.as_str().to_uppercase(),
            r.meta.id,
            r.meta.level,
            r.meta.spec
        );
        for line in visible(&detail(r)).lines() {
            let _ = writeln!(c, "    {line}");
        }
    }
    let _ = write!(c, "\n{:<10}", "profile");
    for s in Status::ALL {
        let _ = write!(c, " {:>15}", s.as_str());
    }
    c.push('\n');
    for (p, counts) in by_profile(&outcome.results) {
        let _ = write!(c, "{:<10}", p.as_str());
        for n in counts {
            let _ = write!(c, " {n:>15}");
        }
        c.push('\n');
    }
    for r in outcome.results.iter().filter(|r| !r.measured.is_empty()) {
        for (name, value) in &r.measured {
            let _ = writeln!(c, "measured: {} {name} = {value}", r.meta.id);
        }
    }
    for e in &outcome.unmatched_expectations {
        let _ = writeln!(c, "expectation `{e}` matched no scenario");
    }
    let imp = &outcome.hello["implementation"];
    let _ = writeln!(
        c,
        "\n{} {} on backend {}: {} in {:.1} s",
        imp["name"].as_str().unwrap_or("?"),
        imp["version"].as_str().unwrap_or("?"),
        outcome.backend,
        if as_expected(&outcome.results) {
            "as expected"
        } else {
            "NOT as expected"
        },
        outcome.duration.as_secs_f64()
    );
    c
}

/// Writes `report.json`, `junit.xml` and `report.md` into `dir`.
pub fn write_all(outcome: &RunOutcome, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&json(outcome))? + "\n",
    )?;
    std::fs::write(dir.join("junit.xml"), junit(outcome))?;
    std::fs::write(dir.join("report.md"), markdown(outcome))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::scenario::{Level, Meta};
    use crate::verdict::{Failure, Verdict};

    fn meta(id: &str, profile: Profile, level: Level) -> Meta {
        Meta {
            id: id.into(),
            profile,
            level,
            spec: "spec.md §1".into(),
            title: "t".into(),
        }
    }

    /// One result of every status, with characters that need escaping.
    fn outcome() -> RunOutcome {
        let fail = Failure::new(
            "R <1> & \"quotes\"",
            "code `a|b`",
            "got\nsomething \u{1} else",
        );
        let r = |id: &str, p, v: Verdict, exp: Option<&str>| {
            ScenarioResult::new(meta(id, p, Level::Must), v, exp, 12)
        };
        RunOutcome {
            results: vec![
                r("ref.ok", Profile::Refs, Verdict::Pass, None),
                r("ref.bad", Profile::Refs, Verdict::Fail(fail.clone()), None),
                r(
                    "ref.known",
                    Profile::Refs,
                    Verdict::Fail(fail),
                    Some("known gap"),
                ),
                r(
                    "resolve.fixed",
                    Profile::Resolve,
                    Verdict::Pass,
                    Some("was broken"),
                ),
                r(
                    "resolve.audit",
                    Profile::Resolve,
                    Verdict::Skip("no audit log".into()),
                    None,
                ),
                r(
                    "worker.x",
                    Profile::Worker,
                    Verdict::Unsupported("no worker".into()),
                    None,
                ),
                r(
                    "auth.y",
                    Profile::Auth,
                    Verdict::Error("Vault did not start".into()),
                    None,
                ),
                {
                    let mut m = r("ha.window", Profile::Ha, Verdict::Pass, None);
                    m.measured.insert("failover_window_ms".into(), 4210);
                    m
                },
            ],
            hello: serde_json::json!({"implementation": {"name": "demo", "version": "1.0"}}),
            backend: "process".into(),
            vault_version: Some("2.7.2".into()),
            unmatched_expectations: vec!["gone.*".into()],
            duration: Duration::from_millis(1500),
        }
    }

    #[test]
    fn junit_escapes_and_maps_every_status() {
        insta::assert_snapshot!(junit(&outcome()));
    }

    #[test]
    fn markdown_lists_what_did_not_pass() {
        insta::assert_snapshot!(markdown(&outcome()));
    }

    #[test]
    fn console_prints_requirement_expected_actual() {
        let c = console(&outcome());
        assert!(c.contains("FAIL ref.bad [MUST spec.md §1]"));
        assert!(c.contains("    expected: code `a|b`"));
        assert!(c.contains("UNEXPECTED-PASS resolve.fixed"));
        assert!(c.contains("ERROR auth.y"));
        assert!(c.contains("expectation `gone.*` matched no scenario"));
        assert!(c.contains("NOT as expected"));
        assert!(c.contains("measured: ha.window failover_window_ms = 4210"));
        assert!(!c.contains("ref.known [")); // expected failures are not listed as failures
    }

    #[test]
    fn json_carries_the_run_metadata() {
        let j = json(&outcome());
        assert_eq!(j["backend"], "process");
        assert_eq!(j["vault_version"], "2.7.2");
        assert_eq!(j["as_expected"], false);
        assert_eq!(j["counts"]["expected-fail"], 1);
        assert_eq!(
            j["results"][1]["failure"]["requirement"],
            "R <1> & \"quotes\""
        );
        assert_eq!(j["results"][7]["measured"]["failover_window_ms"], 4210);
        assert!(j["results"][0].get("measured").is_none());
    }
}
