//! The token rule table: the one list of credential shapes that vaultref
//! recognises without being told the value.
//!
//! Two consumers share it: the log redactor ([`crate::redact`]) masks what the
//! rules find, and the payload lint refuses a job whose strings match any rule
//! (`payload_contains_secret`). Keeping one table is the point: a token shape
//! the lint knows is a shape the redactor masks, and the other way round.
//! `spec/redaction.md` §3 is the normative text of every rule.
//!
//! # Design
//!
//! A rule is either a *line rule*, a regular expression that never matches a
//! line terminator (`\n` or `\r`) and whose optional capture group `s` marks
//! the secret part (an `Authorization: Bearer` header keeps its name, only the
//! value is hidden), or the one *block rule*, PEM private keys, which spans
//! lines from a `-----BEGIN ... PRIVATE KEY-----` marker to its `END` marker.
//!
//! Line rules are searched line by line, each rule on its own, leftmost-first
//! and non-overlapping, so matches of *different* rules may overlap; callers
//! that rewrite text (the redactor) merge overlaps, callers that only report
//! (the lint) report each. Lines are the unit because that is what makes
//! matching independent of how a stream is cut into writes.
//!
//! For speed, [`RuleSet`] also compiles the alternation of every line rule
//! into one capture-free regex: on clean text one DFA pass over a whole buffer
//! says "no rule matches anywhere", and only lines it hits are searched rule by
//! rule.
//!
//! Patterns are written in the common subset of Rust `regex`, RE2 and PCRE
//! (with `(?-u:\b)`, an ASCII word boundary, spelled `\b` elsewhere), so a
//! second implementation can copy them from the spec.

use std::ops::Range;
use std::sync::OnceLock;

use regex::bytes::{Regex, RegexBuilder};

/// How a rule matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleKind {
    /// A regular expression applied to each line on its own; it never matches
    /// `\n` or `\r`. The capture group named `s`, if present, is the secret
    /// part; otherwise the whole match is.
    Line(&'static str),
    /// A PEM private-key block: from a `BEGIN` marker matching the first regex
    /// to the end of the next `END` marker matching the second, or, if no END
    /// marker comes within [`PEM_MAX_LINES`] line feeds, to the end of that
    /// last line (or of the text).
    PemBlock {
        /// The opening marker.
        begin: &'static str,
        /// The closing marker.
        end: &'static str,
    },
}

/// How many line feeds after its BEGIN marker a PEM block may run without an
/// END marker before it is cut (an 8192-bit RSA key is about 100 lines).
pub const PEM_MAX_LINES: usize = 200;

/// One token rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Stable id, used in `[REDACTED:<id>]` and in lint errors. Ids are never
    /// renamed or reused.
    pub id: &'static str,
    /// What the rule finds, for people.
    pub description: &'static str,
    /// How it finds it.
    pub kind: RuleKind,
}

/// The rule table, in priority order (when two rules' matches start at the
/// same byte, the earlier rule names the redaction).
static RULES: &[Rule] = &[
    Rule {
        id: "github-pat",
        description: "GitHub classic personal access token (ghp_ + 36 or more alphanumerics)",
        kind: RuleKind::Line(r"ghp_[A-Za-z0-9]{36,}"),
    },
    Rule {
        id: "github-oauth",
        description: "GitHub OAuth access token (gho_)",
        kind: RuleKind::Line(r"gho_[A-Za-z0-9]{36,}"),
    },
    Rule {
        id: "github-user-to-server",
        description: "GitHub App user-to-server token (ghu_)",
        kind: RuleKind::Line(r"ghu_[A-Za-z0-9]{36,}"),
    },
    Rule {
        id: "github-server-to-server",
        description: "GitHub App installation token (ghs_)",
        kind: RuleKind::Line(r"ghs_[A-Za-z0-9]{36,}"),
    },
    Rule {
        id: "github-refresh",
        description: "GitHub refresh token (ghr_)",
        kind: RuleKind::Line(r"ghr_[A-Za-z0-9]{36,}"),
    },
    Rule {
        id: "github-fine-grained-pat",
        description: "GitHub fine-grained personal access token (github_pat_ + 82 or more word characters)",
        kind: RuleKind::Line(r"github_pat_[A-Za-z0-9_]{82,}"),
    },
    Rule {
        id: "vault-token",
        description: "HashiCorp Vault 1.10+ service, batch or recovery token (hvs. hvb. hvr.)",
        kind: RuleKind::Line(r"hv[sbr]\.[A-Za-z0-9_-]{24,}"),
    },
    Rule {
        id: "vault-legacy-token",
        description: "OpenBao / legacy Vault token: s. or r. + exactly 24 alphanumerics, or batch b. + 80 or more",
        kind: RuleKind::Line(
            r"(?-u:\b)[sr]\.[A-Za-z0-9]{24}(?-u:\b)|(?-u:\b)b\.[A-Za-z0-9_-]{80,}",
        ),
    },
    Rule {
        id: "aws-access-key-id",
        description: "AWS access key id (AKIA, ASIA, ABIA, ACCA, A3T. + 16 upper-case alphanumerics)",
        kind: RuleKind::Line(r"(?-u:\b)(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?-u:\b)"),
    },
    Rule {
        id: "gitlab-pat",
        description: "GitLab personal access token (glpat- + 20 or more)",
        kind: RuleKind::Line(r"glpat-[A-Za-z0-9_-]{20,}"),
    },
    Rule {
        id: "google-api-key",
        description: "Google API key (AIza + 35)",
        kind: RuleKind::Line(r"AIza[A-Za-z0-9_-]{35}"),
    },
    Rule {
        id: "jwt",
        description: "JSON Web Token: eyJ header . eyJ payload . optional signature",
        kind: RuleKind::Line(r"(?-u:\b)eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    },
    Rule {
        id: "private-key",
        description: "PEM private-key block, BEGIN marker to END marker (multi-line)",
        kind: RuleKind::PemBlock {
            begin: r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----",
            end: r"-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----",
        },
    },
    Rule {
        id: "authorization-header",
        description: "Value of an Authorization header with the Bearer, Basic or token scheme",
        kind: RuleKind::Line(
            r#"(?i:authorization)["']?[ \t]*[:=][ \t]*["']?(?i:bearer|basic|token)[ \t]+(?P<s>[^ \t\r\n"',;]+)"#,
        ),
    },
    Rule {
        id: "bearer-token",
        description: "A bare `Bearer <token>` of 16 or more token characters",
        kind: RuleKind::Line(r"(?-u:\b)(?i:bearer)[ \t]+(?P<s>[A-Za-z0-9._~+/-]{16,}=*)"),
    },
    Rule {
        id: "url-password",
        description: "The password part of URL user-info (scheme://user:PASSWORD@host)",
        kind: RuleKind::Line(r"://[^ \t\r\n:/?#@]*:(?P<s>[^ \t\r\n/?#@]+)@"),
    },
    Rule {
        id: "git-credential-password",
        description: "A git credential-helper `password=` line (the whole rest of the line)",
        kind: RuleKind::Line(r"(?m:^)password=(?P<s>[^\r\n]+)"),
    },
    Rule {
        id: "secret-assignment",
        description: "A token=, password=, secret=, api_key=, access_key=, credential= style assignment of 8 or more characters (`:` needs a space or quote after it, so `user:token@host` is left to url-password)",
        kind: RuleKind::Line(
            r#"(?i:token|passw(?:or)?d|secret|api_?key|access_?key|credentials?)["']?[ \t]*(?:=[ \t]*["']?|:[ \t]*["']|:[ \t]+)(?P<s>[^ \t\r\n"'`,;&]{8,})"#,
        ),
    },
];

/// The rule table, in priority order.
pub fn rules() -> &'static [Rule] {
    RULES
}

/// Looks a rule up by id.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// One match of one rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenMatch {
    /// The rule that matched.
    pub rule: &'static Rule,
    /// Byte range of the secret part in the searched text.
    pub range: Range<usize>,
}

impl TokenMatch {
    /// The matching rule's id.
    pub fn rule_id(&self) -> &'static str {
        self.rule.id
    }
}

/// The compiled rule table.
///
/// Compiling is done once per process ([`RuleSet::get`]); the set is
/// immutable and shared across threads.
#[derive(Debug)]
pub struct RuleSet {
    /// Line rules: index into [`RULES`] and compiled regex.
    line: Vec<(usize, Regex)>,
    /// Alternation of every line rule, without captures: the prefilter.
    any_line: Regex,
    /// PEM block rule: index, BEGIN and END regexes.
    pem: Option<(usize, Regex, Regex)>,
}

impl RuleSet {
    /// The process-wide compiled rule set.
    pub fn get() -> &'static RuleSet {
        static SET: OnceLock<RuleSet> = OnceLock::new();
        SET.get_or_init(|| RuleSet::compile(RULES))
    }

    fn compile(rules: &'static [Rule]) -> RuleSet {
        let mut line = Vec::new();
        let mut alternation = Vec::new();
        let mut pem = None;
        for (i, r) in rules.iter().enumerate() {
            match r.kind {
                RuleKind::Line(p) => {
                    // The table is static and covered by tests: a bad pattern is
                    // a programming error, not input.
                    line.push((i, compile(p)));
                    // Group names must be unique in one regex; the prefilter
                    // needs no groups at all.
                    alternation.push(format!("(?:{})", p.replace("(?P<s>", "(?:")));
                }
                RuleKind::PemBlock { begin, end } => {
                    pem = Some((i, compile(begin), compile(end)));
                }
            }
        }
        let any_line = compile(&alternation.join("|"));
        RuleSet {
            line,
            any_line,
            pem,
        }
    }

    /// Where the next line-rule match at or after `from` starts, if any.
    ///
    /// `text` is raw bytes: logs need not be UTF-8, and every rule is ASCII.
    ///
    /// This is the fast "is there anything at all" pass; matches it reports
    /// are a superset, by line, of what [`RuleSet::line_matches`] finds.
    pub fn prefilter(&self, text: &[u8], from: usize) -> Option<usize> {
        self.any_line.find_at(text, from).map(|m| m.start())
    }

    /// Every line-rule match in one line (`line` holds no `\n` or `\r`),
    /// offset by `base`, in rule order then position order.
    pub fn line_matches(&self, line: &[u8], base: usize, out: &mut Vec<TokenMatch>) {
        for (i, re) in &self.line {
            for caps in re.captures_iter(line) {
                let m = caps
                    .name("s")
                    .unwrap_or_else(|| caps.get(0).expect("group 0 is always present in a match"));
                if m.start() < m.end() {
                    out.push(TokenMatch {
                        rule: &RULES[*i],
                        range: base + m.start()..base + m.end(),
                    });
                }
            }
        }
    }

    /// The rule and BEGIN-marker regex of the PEM block rule.
    pub(crate) fn pem_begin(&self) -> Option<(&'static Rule, &Regex)> {
        self.pem.as_ref().map(|(i, b, _)| (&RULES[*i], b))
    }

    /// The END-marker regex of the PEM block rule.
    pub(crate) fn pem_end(&self) -> Option<&Regex> {
        self.pem.as_ref().map(|(_, _, e)| e)
    }

    /// Every rule match in `text` (one-shot), sorted by start, then by rule
    /// order. Matches of different rules may overlap.
    pub fn find_all(&self, text: &str) -> Vec<TokenMatch> {
        let text = text.as_bytes();
        let mut out = Vec::new();
        // Line rules: only lines the prefilter hits are searched rule by rule.
        let mut from = 0;
        while let Some(hit) = self.prefilter(text, from) {
            let start = memchr::memrchr2(b'\n', b'\r', &text[..hit]).map_or(0, |i| i + 1);
            let end = memchr::memchr2(b'\n', b'\r', &text[hit..]).map_or(text.len(), |i| hit + i);
            self.line_matches(&text[start..end], start, &mut out);
            if end >= text.len() {
                break;
            }
            from = end + 1;
        }
        // The PEM block rule.
        if let Some((rule, begin)) = self.pem_begin() {
            let mut from = 0;
            while let Some(b) = begin.find_at(text, from) {
                let end = pem_block_end(self, text, b.end());
                out.push(TokenMatch {
                    rule,
                    range: b.start()..end,
                });
                from = end.max(b.end());
                if from >= text.len() {
                    break;
                }
            }
        }
        out.sort_by_key(|m| (m.range.start, rule_index(m.rule)));
        out
    }
}

/// Where a PEM block whose BEGIN marker ends at `after_begin` ends: the end of
/// the next END marker within [`PEM_MAX_LINES`] line feeds, else the end of
/// the line holding the last allowed line feed's predecessor (or of the text).
pub(crate) fn pem_block_end(set: &RuleSet, text: &[u8], after_begin: usize) -> usize {
    // The search window: up to PEM_MAX_LINES line feeds, then to the end of
    // that line.
    let rest = &text[after_begin..];
    let mut window_end = rest.len();
    let mut seen = 0;
    for (i, &b) in rest.iter().enumerate() {
        if b == b'\n' {
            seen += 1;
            if seen > PEM_MAX_LINES {
                window_end = i;
                break;
            }
        }
    }
    let window = &rest[..window_end];
    match set.pem_end().and_then(|e| e.find(window)) {
        Some(m) => after_begin + m.end(),
        None => after_begin + window_end,
    }
}

/// Compiles a table pattern for byte haystacks. Unicode is off: every rule is
/// ASCII, negated classes then also match bytes that are not UTF-8, and the
/// DFA stays small. Because every delimiter a rule uses is ASCII, match
/// boundaries in UTF-8 text always fall on character boundaries.
fn compile(pattern: &str) -> Regex {
    // The table is static and covered by tests: a bad pattern is a
    // programming error, not input.
    RegexBuilder::new(pattern)
        .unicode(false)
        .build()
        .expect("rule table regex")
}

/// Position of a rule in the table (its priority).
pub fn rule_index(rule: &Rule) -> usize {
    RULES
        .iter()
        .position(|r| r.id == rule.id)
        .unwrap_or(usize::MAX)
}

/// Every rule match in `text`, sorted by start then rule order, with the byte
/// range of each secret part. This is the entry point for the payload lint.
///
/// ```
/// let text = "remote: https://x-access-token:ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0000@github.com/o/r";
/// let found: Vec<_> = vaultref::redact::rules::find_tokens(text).collect();
/// assert!(found.iter().any(|m| m.rule_id() == "github-pat"));
/// assert!(found.iter().any(|m| m.rule_id() == "url-password"));
/// ```
pub fn find_tokens(text: &str) -> impl Iterator<Item = TokenMatch> {
    RuleSet::get().find_all(text).into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GHP: &str = "ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0000";

    fn ids(text: &str) -> Vec<(&'static str, &str)> {
        find_tokens(text)
            .map(|m| (m.rule_id(), &text[m.range]))
            .collect()
    }

    #[test]
    fn ids_are_unique_and_kebab_case() {
        let mut seen = std::collections::HashSet::new();
        for r in rules() {
            assert!(seen.insert(r.id), "duplicate id {}", r.id);
            assert!(
                r.id.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{}",
                r.id
            );
            assert!(!r.description.is_empty());
            assert_eq!(rule(r.id), Some(r));
        }
        // Compiles every pattern.
        let set = RuleSet::get();
        assert_eq!(set.line.len() + 1, rules().len());
    }

    #[test]
    fn line_rules_never_match_a_line_terminator() {
        for r in rules() {
            if let RuleKind::Line(p) = r.kind {
                let re = compile(p);
                for probe in ["\n", "\r", "password=\n", "password=a\nb"] {
                    for m in re.find_iter(probe.as_bytes()) {
                        assert!(!m.as_bytes().contains(&b'\n'), "{}", r.id);
                        assert!(!m.as_bytes().contains(&b'\r'), "{}", r.id);
                    }
                }
            }
        }
    }

    #[test]
    fn github_tokens() {
        assert_eq!(ids(&format!("token {GHP} end")), [("github-pat", GHP)]);
        let short = "ghp_FAKEFAKE1234";
        assert_eq!(ids(short), []);
        for (p, id) in [
            ("gho_", "github-oauth"),
            ("ghu_", "github-user-to-server"),
            ("ghs_", "github-server-to-server"),
            ("ghr_", "github-refresh"),
        ] {
            let t = format!("{p}{}", "A1".repeat(18));
            assert_eq!(ids(&t), [(id, t.as_str())]);
        }
        let fine = format!("github_pat_{}", "F".repeat(82));
        assert_eq!(ids(&fine), [("github-fine-grained-pat", fine.as_str())]);
    }

    #[test]
    fn vault_tokens() {
        let hvs = format!("hvs.{}", "CAESIFAKE".repeat(10));
        assert_eq!(ids(&hvs), [("vault-token", hvs.as_str())]);
        let legacy = "s.FAKEfake0123456789ABCDEF";
        assert_eq!(
            ids(&format!("VAULT_TOKEN {legacy}.")),
            [("vault-legacy-token", legacy)]
        );
        // 23 or 25 characters, or glued to a word, are not legacy tokens.
        assert_eq!(ids("s.FAKEfake0123456789ABCDE"), []);
        assert_eq!(ids("s.FAKEfake0123456789ABCDEFG"), []);
        assert_eq!(ids("process.FAKEfake0123456789ABCDEF"), []);
    }

    #[test]
    fn aws_gitlab_google_jwt() {
        assert_eq!(
            ids("key=AKIAFAKEFAKEFAKE1234 x"),
            [("aws-access-key-id", "AKIAFAKEFAKEFAKE1234")]
        );
        let gl = "glpat-FAKEfakeFAKEfake1234";
        assert_eq!(ids(gl), [("gitlab-pat", gl)]);
        let g = format!("AIza{}", "F".repeat(35));
        assert_eq!(ids(&g), [("google-api-key", g.as_str())]);
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJmYWtlIn0.ZmFrZXNpZ25hdHVyZQ";
        assert_eq!(ids(&format!("id_token {jwt} ok")), [("jwt", jwt)]);
    }

    #[test]
    fn headers_urls_and_assignments() {
        assert_eq!(
            ids("> Authorization: Bearer abc.def-123"),
            [("authorization-header", "abc.def-123")]
        );
        assert_eq!(
            ids("authorization: token sometoken"),
            [("authorization-header", "sometoken")]
        );
        let url = format!("https://x-access-token:{GHP}@github.com/o/r.git");
        let found = ids(&url);
        assert!(found.contains(&("url-password", GHP)), "{found:?}");
        assert!(found.contains(&("github-pat", GHP)), "{found:?}");
        assert_eq!(ids("https://github.com:443/o/r@v1"), []);
        assert_eq!(ids("git@github.com:owner/repo.git"), []);
        assert_eq!(
            ids("password=hunter2"),
            [("git-credential-password", "hunter2")]
        );
        assert_eq!(
            ids(r#"{"client_secret": "FAKEFAKE99"}"#),
            [("secret-assignment", "FAKEFAKE99")]
        );
        assert_eq!(ids("max_tokens=4096 secret=short"), []);
    }

    #[test]
    fn pem_blocks_span_lines() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIFAKE\nFAKE==\n-----END RSA PRIVATE KEY-----";
        let text = format!("key:\n{pem}\ndone\n");
        assert_eq!(ids(&text), [("private-key", pem)]);
        // Unterminated: runs to the end of the text.
        let cut = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn";
        assert_eq!(ids(cut), [("private-key", cut)]);
        assert_eq!(ids("-----BEGIN CERTIFICATE-----\nMIIB\n"), []);
    }

    #[test]
    fn prefilter_is_a_superset_of_line_rules() {
        let set = RuleSet::get();
        for line in [GHP, "password=x", "AKIAFAKEFAKEFAKE1234", "nothing here"] {
            let mut out = Vec::new();
            set.line_matches(line.as_bytes(), 0, &mut out);
            assert_eq!(
                !out.is_empty(),
                set.prefilter(line.as_bytes(), 0).is_some(),
                "{line}"
            );
        }
    }
}
