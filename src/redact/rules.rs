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
//! For speed, every rule names the *keywords* its matches start with
//! (`ghp_`, `://`, `token`...). [`RuleSet`] finds where keywords start in
//! one SIMD pass over a whole buffer and runs a rule's regex only where
//! one of its keywords starts, anchored there. A single DFA over the
//! alternation of all rules was measured at about a tenth of the speed. Rules
//! whose keywords are shorter than 3 bytes (the legacy Vault `s.` tokens,
//! Twilio's `SK`) are searched apart, all of them in one multi-pattern regex
//! that finds the lines to search rule by rule, because 2-byte keywords
//! would halve the speed of the shared search; where the keyword filter
//! runs, it also gives the places where that regex may match (the keyword
//! and the two bytes after it), and the regex is tried only there.
//!
//! Patterns are written in the common subset of Rust `regex`, RE2 and PCRE
//! (with `(?-u:\b)`, an ASCII word boundary, spelled `\b` elsewhere), so a
//! second implementation can copy them from the spec.

use std::ops::Range;
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, MatchKind};
use regex::bytes::{Regex, RegexBuilder};
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, PatternID, hybrid, meta};
use zeroize::Zeroize;

use super::keywords::{Hit, KeywordFilter, Search};

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

/// How far past the end of its segment (§4.1) a line-rule match that starts
/// in a segment of a long line may run: a token printed across the 256 KiB
/// mark is found whole.
pub const RULE_REACH: usize = 4096;

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
    /// Every match of a line rule starts with one of these: exactly, or for a
    /// case-insensitive rule in lower, Capitalised or UPPER case. The scanner
    /// looks for keywords first and tries the rule only where one starts.
    pub keywords: &'static [&'static str],
    /// The rule finds a credential by the name it is given (`password=`,
    /// `--token`, `Authorization:`), not by its shape, so code and
    /// configuration that name one without holding it look the same: a
    /// match whose secret part is a placeholder ([`is_placeholder`]) is not
    /// a match.
    pub placeholders: bool,
}

/// The rule table, in priority order (when two rules' matches start at the
/// same byte, the earlier rule names the redaction).
/// The rules whose match may be *partial* at a long line's window (spec
/// §4.1): past their keyword, the pattern is runs of the token's own
/// alphabet up to a delimiter it needs (a JWT's dots, a URL password's `@`,
/// a quoted value's closing quote), so an automaton still alive at the
/// window's end is inside such a run. A rule with an open gap (`curl` ...
/// `-u`, `login` ... `-p`) stays alive over any text and would mask the
/// rest of the window: it is not listed (review, session 12).
pub const PARTIAL_MATCH_RULES: &[&str] = &["jwt", "url-password", "docker-config-auth"];

/// The bytes that may follow a keyword of a rule with a keyword under 3
/// bytes, in its next two bytes (`s.` then `[A-Za-z0-9]`, `b.` then
/// `[A-Za-z0-9_-]`, `SK` then hex digits): the keyword filter's fingerprint
/// of those rules (`keywords.rs`). A test tries every other byte there.
const DIRECT_THEN: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

/// The keyword filter's searches, in the order of [`RuleSet::searches`]
/// (also the order of hits at one byte): the 3-byte keywords as written,
/// the folded ones in any case, the direct rules' keywords.
const EXACT3: usize = 0;
const FOLDED: usize = 1;
const DIRECT: usize = 2;

static RULES: &[Rule] = &[
    Rule {
        id: "github-pat",
        description: "GitHub classic personal access token (ghp_ + 36 or more alphanumerics)",
        kind: RuleKind::Line(r"ghp_[A-Za-z0-9]{36,}"),
        keywords: &["ghp_"],
        placeholders: false,
    },
    Rule {
        id: "github-oauth",
        description: "GitHub OAuth access token (gho_)",
        kind: RuleKind::Line(r"gho_[A-Za-z0-9]{36,}"),
        keywords: &["gho_"],
        placeholders: false,
    },
    Rule {
        id: "github-user-to-server",
        description: "GitHub App user-to-server token (ghu_)",
        kind: RuleKind::Line(r"ghu_[A-Za-z0-9]{36,}"),
        keywords: &["ghu_"],
        placeholders: false,
    },
    Rule {
        id: "github-server-to-server",
        description: "GitHub App installation token (ghs_)",
        kind: RuleKind::Line(r"ghs_[A-Za-z0-9]{36,}"),
        keywords: &["ghs_"],
        placeholders: false,
    },
    Rule {
        id: "github-refresh",
        description: "GitHub refresh token (ghr_)",
        kind: RuleKind::Line(r"ghr_[A-Za-z0-9]{36,}"),
        keywords: &["ghr_"],
        placeholders: false,
    },
    Rule {
        id: "github-fine-grained-pat",
        description: "GitHub fine-grained personal access token (github_pat_ + 82 or more word characters)",
        kind: RuleKind::Line(r"github_pat_[A-Za-z0-9_]{82,}"),
        keywords: &["github_pat_"],
        placeholders: false,
    },
    Rule {
        id: "vault-token",
        description: "HashiCorp Vault 1.10+ service, batch or recovery token (hvs. hvb. hvr.)",
        kind: RuleKind::Line(r"hv[sbr]\.[A-Za-z0-9_-]{24,}"),
        keywords: &["hvs.", "hvb.", "hvr."],
        placeholders: false,
    },
    Rule {
        id: "vault-legacy-token",
        description: "OpenBao / legacy Vault token: s. or r. + exactly 24 alphanumerics, or batch b. + 80 or more",
        kind: RuleKind::Line(
            r"(?-u:\b)[sr]\.[A-Za-z0-9]{24}(?-u:\b)|(?-u:\b)b\.[A-Za-z0-9_-]{80,}",
        ),
        keywords: &["s.", "r.", "b."],
        placeholders: false,
    },
    Rule {
        id: "aws-access-key-id",
        description: "AWS access key id (AKIA, ASIA, ABIA, ACCA, A3T. + 16 upper-case alphanumerics)",
        kind: RuleKind::Line(r"(?-u:\b)(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?-u:\b)"),
        keywords: &["AKIA", "ASIA", "ABIA", "ACCA", "A3T"],
        placeholders: false,
    },
    Rule {
        id: "gitlab-pat",
        description: "GitLab personal access token (glpat- + 20 or more)",
        kind: RuleKind::Line(r"glpat-[A-Za-z0-9_-]{20,}"),
        keywords: &["glpat-"],
        placeholders: false,
    },
    Rule {
        id: "google-api-key",
        description: "Google API key (AIza + 35)",
        kind: RuleKind::Line(r"AIza[A-Za-z0-9_-]{35}"),
        keywords: &["AIza"],
        placeholders: false,
    },
    Rule {
        id: "jwt",
        description: "JSON Web Token: eyJ header . eyJ payload . optional signature",
        kind: RuleKind::Line(r"(?-u:\b)eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
        keywords: &["eyJ"],
        placeholders: false,
    },
    Rule {
        id: "slack-token",
        description: "Slack bot, user, app-level, configuration and refresh token (xoxb- xoxp- xoxa- xoxr- xoxs- xoxe- xapp-)",
        kind: RuleKind::Line(
            r"xox[abeoprs](?:\.xox[bp])?-[0-9A-Za-z-]{10,}|xapp-[0-9]-[0-9A-Za-z-]{10,}",
        ),
        keywords: &["xox", "xapp-"],
        placeholders: false,
    },
    Rule {
        id: "slack-webhook",
        description: "The secret path of a Slack incoming-webhook or workflow URL",
        kind: RuleKind::Line(
            r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<s>[A-Za-z0-9_/+-]{20,})",
        ),
        keywords: &["hooks.slack.com/"],
        placeholders: false,
    },
    Rule {
        id: "stripe-key",
        description: "Stripe secret or restricted API key (sk_live_ sk_test_ rk_live_ rk_test_) or webhook signing secret (whsec_)",
        kind: RuleKind::Line(
            r"(?-u:\b)[sr]k_(?:live|test)_[0-9A-Za-z]{20,}|whsec_[A-Za-z0-9+/=]{24,}",
        ),
        keywords: &["sk_", "rk_", "whsec_"],
        placeholders: false,
    },
    Rule {
        id: "sendgrid-api-key",
        description: "SendGrid API key (SG. + 22 . + 43)",
        kind: RuleKind::Line(r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}"),
        keywords: &["SG."],
        placeholders: false,
    },
    Rule {
        id: "twilio-api-key",
        description: "Twilio API key (SK + 32 hex digits)",
        kind: RuleKind::Line(r"(?-u:\b)SK[0-9a-fA-F]{32}(?-u:\b)"),
        keywords: &["SK"],
        placeholders: false,
    },
    Rule {
        id: "npm-token",
        description: "npm access token (npm_ + 36)",
        kind: RuleKind::Line(r"npm_[A-Za-z0-9]{36}"),
        keywords: &["npm_"],
        placeholders: false,
    },
    Rule {
        id: "pypi-token",
        description: "PyPI or TestPyPI API token (pypi- + a macaroon for pypi.org or test.pypi.org)",
        kind: RuleKind::Line(r"pypi-Ag(?:EIcHlwaS5vcmc|ENdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{50,}"),
        keywords: &["pypi-Ag"],
        placeholders: false,
    },
    Rule {
        id: "dockerhub-token",
        description: "Docker Hub personal or organisation access token (dckr_pat_ dckr_oat_)",
        kind: RuleKind::Line(r"dckr_(?:pat|oat)_[A-Za-z0-9_-]{27,}"),
        keywords: &["dckr_"],
        placeholders: false,
    },
    Rule {
        id: "gitlab-token",
        description: "GitLab deploy, runner, pipeline-trigger token or runner registration token (gldt- glrt- glptt- GR1348941)",
        kind: RuleKind::Line(r"(?:gldt|glrt|glptt)-[A-Za-z0-9_-]{20,}|GR1348941[A-Za-z0-9_-]{20,}"),
        keywords: &["gldt-", "glrt-", "glptt-", "GR1348941"],
        placeholders: false,
    },
    Rule {
        id: "private-key",
        description: "PEM private-key block, BEGIN marker to END marker (multi-line)",
        kind: RuleKind::PemBlock {
            begin: r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----",
            end: r"-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----",
        },
        keywords: &["-----BEGIN"],
        placeholders: false,
    },
    Rule {
        id: "authorization-header",
        description: "Value of an Authorization header with the Bearer, Basic or token scheme",
        kind: RuleKind::Line(
            r#"(?i:authorization)["']?[ \t]*[:=][ \t]*["']?(?i:bearer|basic|token)[ \t]+(?P<s>[^ \t\r\n"',;]+)"#,
        ),
        keywords: &["authorization"],
        placeholders: true,
    },
    Rule {
        id: "bearer-token",
        description: "A bare `Bearer <token>` of 16 or more token characters",
        kind: RuleKind::Line(r"(?-u:\b)(?i:bearer)[ \t]+(?P<s>[A-Za-z0-9._~+/-]{16,}=*)"),
        keywords: &["bearer"],
        placeholders: true,
    },
    Rule {
        id: "url-password",
        description: "The password in the user-info of a URL (between the colon after the user name and the @ before the host)",
        kind: RuleKind::Line(r"://[^ \t\r\n:/?#@]*:(?P<s>[^ \t\r\n/?#@]+)@"),
        keywords: &["://"],
        placeholders: true,
    },
    Rule {
        id: "git-credential-password",
        description: "A git credential-helper `password=` line (the whole rest of the line)",
        kind: RuleKind::Line(r"(?mR:^)password=(?P<s>[^\r\n]+)"),
        keywords: &["password="],
        placeholders: true,
    },
    Rule {
        id: "azure-storage-key",
        description: "The account key of an Azure Storage, Service Bus or Event Hubs connection string (AccountKey= SharedAccessKey=)",
        kind: RuleKind::Line(r"(?i:accountkey|sharedaccesskey)=(?P<s>[A-Za-z0-9+/]{40,}={0,2})"),
        keywords: &["accountkey=", "sharedaccesskey="],
        placeholders: false,
    },
    Rule {
        id: "docker-config-auth",
        description: "The base64 user:password of a Docker config.json `auth` entry",
        kind: RuleKind::Line(r#""(?i:auth)"[ \t]*:[ \t]*"(?P<s>[A-Za-z0-9+/]{8,}={0,2})""#),
        keywords: &["\"auth\""],
        placeholders: false,
    },
    Rule {
        id: "netrc-password",
        description: "The password of a .netrc machine entry written on one line",
        kind: RuleKind::Line(
            r"(?-u:\b)(?i:machine)[ \t]+[^ \t\r\n]+(?:[ \t]+(?i:login|account)[ \t]+[^ \t\r\n]+)*[ \t]+(?i:password)[ \t]+(?P<s>[^ \t\r\n]+)",
        ),
        keywords: &["machine"],
        placeholders: true,
    },
    Rule {
        id: "cli-password-flag",
        description: "The value given to a command-line flag named --password, --passwd, --pass, --token, --api-key, --secret, --auth-token or --access-token",
        kind: RuleKind::Line(
            r#"--(?i:password|passwd|pass|token|api-?key|secret|auth-token|access-token)(?:=|[ \t]+)["']?(?P<s>[^ \t\r\n"'`]{4,})"#,
        ),
        keywords: &[
            "--pass", "--token", "--api", "--secret", "--auth", "--access",
        ],
        placeholders: true,
    },
    Rule {
        id: "cli-user-password",
        description: "The password in curl's -u or --user option (user, colon, password)",
        kind: RuleKind::Line(
            r#"(?i:curl)[^\r\n]*?[ \t](?:-u|--user)(?:=|[ \t]*)["']?[^ \t\r\n:"']+:(?P<s>[^ \t\r\n"']+)"#,
        ),
        keywords: &["curl"],
        placeholders: true,
    },
    Rule {
        id: "cli-short-password-flag",
        description: "The -p value of a `login` command (docker, podman, helm registry) or the -pVALUE of a MySQL client",
        kind: RuleKind::Line(
            r#"(?:(?i:login)(?:[ \t]+[^ \t\r\n]+)*?[ \t]+-p(?:=|[ \t]+)|(?i:mysql)[a-z]*(?:[ \t]+[^ \t\r\n]+)*?[ \t]+-p)["']?(?P<s>[^ \t\r\n"']+)"#,
        ),
        keywords: &["login", "mysql"],
        placeholders: true,
    },
    Rule {
        id: "password-colon",
        description: "A password written as Password:value, with no space after the colon (8 or more characters, no @ or /)",
        kind: RuleKind::Line(r#"(?i:passw(?:or)?d|_pwd):(?P<s>[^ \t\r\n"'`,;&@/]{8,})"#),
        keywords: &["passw", "_pwd"],
        placeholders: true,
    },
    Rule {
        id: "secret-assignment",
        description: "A token=, password=, _pwd=, secret=, secret_key=, api_key=, api-key:, access_key=, private_key=, credential= style assignment of 8 or more characters, the name in any case (`:` needs a space or quote after it, so `user:token@host` is left to url-password)",
        kind: RuleKind::Line(
            r#"(?i:token|passw(?:or)?d|_pwd|secret(?:[_-]?access)?(?:[_-]?key)?|api[_-]?key|access[_-]?key|private[_-]?key|credentials?)["']?[ \t]*(?:=[ \t]*["']?|:[ \t]*["']|:[ \t]+)(?P<s>[^ \t\r\n"'`,;&]{8,})"#,
        ),
        keywords: &[
            "token",
            "passw",
            "_pwd",
            "secret",
            "api_",
            "api-",
            "apik",
            "access_",
            "access-",
            "accessk",
            "private",
            "credential",
        ],
        placeholders: true,
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
///
/// Line rules are found keyword-first: a SIMD pass over a whole buffer
/// finds where a keyword starts, and only there is the rule's regex run,
/// anchored. The keywords make two *searches*, each with aho-corasick's
/// leftmost-longest semantics (the triggers below are built for them).
/// Where the processor has AVX-512 VBMI, both are done by one pass with
/// exact byte tables over the text as written (`keywords.rs`: on the
/// short-line log the redactor spends 0.81 of its CPU time with it, 0.67
/// rules only; benches/README, session 13). Elsewhere each is an
/// aho-corasick pass (Teddy, a SIMD prefilter), chosen as follows:
///
/// - the keywords of every rule but those below (all of 4 bytes or more),
///   lower-cased, over a lower-cased copy of the text ([`line_keywords`]
///   says why a case-sensitive rule's keyword can be searched there too),
///   with the PEM rule's `-----BEGIN`. They are more than 32, so Teddy takes its
///   "fat" form (16 buckets): in lower-case text nearly every byte shares
///   its high nibble with a keyword's, and with fewer keywords per bucket
///   the fingerprints confirm fewer false candidates. Measured on the
///   short-line log: this one pass costs less than the two it replaced
///   (case-sensitive keywords as written, any-case keywords folded), each
///   a "slim" Teddy of at most 32 keywords (benches/README, session 8);
/// - the keywords of the case-sensitive rules that have a 3-byte keyword
///   (`://`, `eyJ`; the same rules' longer ones too, `AKIA` with `A3T`),
///   as written. Teddy fingerprints as many leading bytes as the shortest keyword has,
///   so one 3-byte keyword among the long ones made every keyword a 3-byte
///   fingerprint and the shared pass far slower.
///
/// Because every match of a rule starts with one of its keywords, this
/// finds exactly the leftmost-first non-overlapping matches a per-line
/// `find_iter` would, at a fraction of the cost of a DFA over the
/// alternation of all rules.
#[derive(Debug)]
pub struct RuleSet {
    /// Line rules: table index, anchored-capable regex, slot of group `s`.
    line: Vec<LineRule>,
    /// Keywords of the case-sensitive rules with a 3-byte keyword (`://`,
    /// `eyJ`, `xox`, ...), all of them, searched in the text as written.
    exact3: Keywords,
    /// Every other keyword, lower-cased, searched in a lower-cased copy of
    /// the text.
    folded: Keywords,
    /// Line rules with a keyword under 3 bytes, searched apart from the
    /// keyword searches (`direct_any`, then rule by rule).
    direct: Vec<usize>,
    /// The `direct` rules' patterns in one multi-pattern regex: one pass
    /// finds the lines where any of them matches, and only those lines are
    /// searched rule by rule (see `scan_lines`).
    direct_any: Option<meta::Regex>,
    /// Both keyword searches in one SIMD pass over the text as written,
    /// where the processor has it (`keywords.rs`); else the two
    /// aho-corasick passes.
    keyword_filter: Option<KeywordFilter>,
    /// The length of the longest keyword.
    keyword_max: usize,
    /// PEM block rule: index, BEGIN regex (run anchored where its keyword
    /// starts) and END regex.
    pem: Option<(usize, meta::Regex, Regex)>,
}

/// One keyword search: the automaton, and per keyword which line rules to
/// try at which offset inside it.
#[derive(Debug)]
struct Keywords {
    ac: AhoCorasick,
    /// The keywords searched (the automaton's patterns, in its order).
    keywords: Vec<String>,
    triggers: Vec<Vec<(usize, usize)>>,
}

impl Keywords {
    /// `kws` are `(keyword, line-rule slot)`; keywords under 3 bytes are
    /// left out by the caller.
    fn build(kws: &[(String, usize)]) -> Keywords {
        let mut uniq: Vec<String> = kws.iter().map(|(k, _)| k.clone()).collect();
        uniq.sort();
        uniq.dedup();
        // A keyword another one starts (`password=` after `passw`) need not
        // be searched: the shorter one's hits try its rules too (below).
        let all = uniq.clone();
        uniq.retain(|k| !all.iter().any(|o| o != k && k.starts_with(o.as_str())));
        // A hit reports the longest keyword starting there, and the search
        // resumes after it. So at each offset inside it, try the rules of
        // every keyword that starts there: one inside it (`hvs.` holds `s.`)
        // or one running past its end (`npm_` then `_pwd`). Trying too much is
        // harmless, the anchored regex decides.
        let triggers = uniq
            .iter()
            .map(|k| {
                let mut t: Vec<(usize, usize)> = Vec::new();
                for i in 0..k.len() {
                    for (k2, slot) in kws {
                        let tail = &k[i..];
                        if (tail.starts_with(k2.as_str()) || k2.starts_with(tail))
                            && !t.contains(&(i, *slot))
                        {
                            t.push((i, *slot));
                        }
                    }
                }
                t.sort_unstable();
                t
            })
            .collect();
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&uniq)
            .expect("rule keywords");
        Keywords {
            ac,
            keywords: uniq,
            triggers,
        }
    }
}

#[derive(Debug)]
struct LineRule {
    index: usize,
    re: meta::Regex,
    group: Option<usize>,
    /// Its pattern, for `dfa`.
    pattern: &'static str,
    /// Listed in [`PARTIAL_MATCH_RULES`].
    partial: bool,
    /// A lazy DFA of the pattern, built on first use: only a match cut
    /// short by a window asks it (`alive_through`).
    dfa: OnceLock<hybrid::dfa::DFA>,
}

impl LineRule {
    /// Whether a match tried at `hay[at]` could still go on to match after
    /// `hay[at..end]`: the pattern's automaton, started there, is not dead
    /// at `end` (a partial match, spec §4.1). A lazy DFA that gives up
    /// counts as alive: the caller then masks more, never less. `cache`:
    /// the DFA's states built so far, kept by the caller across hits
    /// (building them again per hit made a long line of failing hits
    /// twenty times slower).
    fn alive_through(
        &self,
        cache: &mut Option<hybrid::dfa::Cache>,
        hay: &[u8],
        at: usize,
        end: usize,
    ) -> bool {
        let dfa = self.dfa.get_or_init(|| {
            hybrid::dfa::DFA::builder()
                .syntax(syntax::Config::new().unicode(false).utf8(false))
                .build(self.pattern)
                .expect("rule table regex")
        });
        let cache = cache.get_or_insert_with(|| dfa.create_cache());
        let input = Input::new(&hay[..end])
            .range(at..end)
            .anchored(Anchored::Yes);
        let Ok(mut sid) = dfa.start_state_forward(cache, &input) else {
            return true;
        };
        for &b in &hay[at..end] {
            match dfa.next_state(cache, sid, b) {
                Ok(next) if next.is_dead() => return false,
                Ok(next) => sid = next,
                Err(_) => return true,
            }
        }
        true
    }

    /// Whether this rule turns down placeholders and `hay[part]` is one.
    fn placeholder_at(&self, hay: &[u8], part: regex_automata::Span) -> bool {
        RULES[self.index].placeholders && is_placeholder(&hay[part.start..part.end])
    }
}

/// Values that begin like a variable, a template, a marker or the rest of a
/// comparison, never like a credential: `$VAR`, `${VAR}`, `$(cmd)`,
/// `<YOUR_KEY>`, `{{ .Token }}`, `%(password)s`, `#{token}`, `[REDACTED]`,
/// `token==expected` (the value after the first `=`).
pub const PLACEHOLDER_OPENERS: &[&str] = &["$", "<", "{{", "{%", "%(", "#{", "[REDACTED", "="];

/// Values that begin (in any ASCII case) like code reading a credential from
/// elsewhere, or like a type: `process.env.TOKEN`, `os.environ["X"]`,
/// `Optional[str]`, `SecretStr`.
pub const PLACEHOLDER_CODE: &[&str] = &[
    "process.env.",
    "os.environ",
    "os.getenv",
    "env.",
    "env[",
    "secrets.",
    "vars.",
    "settings.",
    "config.",
    "self.",
    "this.",
    "optional[",
    "option<",
    "secret<",
    "secretstr",
    "secretstring",
    "secretbytes",
];

/// Values that are, in any ASCII case and with `_` and `-` left out, one of
/// these words (`CHANGE_ME`, `placeholder`, `None`) ...
pub const PLACEHOLDER_WORDS: &[&str] = &[
    "changeme",
    "replaceme",
    "placeholder",
    "example",
    "redacted",
    "undefined",
    "notset",
    "password",
    "secret",
    "token",
    "dummy",
    "none",
    "null",
    "nil",
    "true",
    "false",
    "empty",
    "required",
    "string",
];

/// ... or begin with one of these (`your_api_key_here`, `YOUR-TOKEN`,
/// `insert-your-key`, `changeme123`).
pub const PLACEHOLDER_WORD_PREFIXES: &[&str] = &[
    "your",
    "insertyour",
    "enteryour",
    "putyour",
    "changeme",
    "replaceme",
];

/// Whether `value`, the secret part of a match of a rule that finds a
/// credential by its name ([`Rule::placeholders`]), is a placeholder rather
/// than a credential (`spec/redaction.md` §3.2): it begins with one of
/// [`PLACEHOLDER_OPENERS`] or [`PLACEHOLDER_CODE`]; it is a call
/// (`getPassword()`, `os.getenv(`: an identifier, dots allowed, then `(`);
/// it is 3 bytes or longer and every byte of it is the same, or one of
/// `x X * . # - _` (`xxxxxxxx`, `********`, `XXXX-XXXX`); or, without `_` and `-`, it is one of
/// [`PLACEHOLDER_WORDS`] or begins with one of [`PLACEHOLDER_WORD_PREFIXES`].
pub fn is_placeholder(value: &[u8]) -> bool {
    let starts_ci =
        |p: &str| value.len() >= p.len() && value[..p.len()].eq_ignore_ascii_case(p.as_bytes());
    if PLACEHOLDER_OPENERS
        .iter()
        .any(|p| value.starts_with(p.as_bytes()))
        || PLACEHOLDER_CODE.iter().any(|p| starts_ci(p))
    {
        return true;
    }
    // A call: `name(`, or `name(args)` with identifiers for arguments and
    // nothing after (`getPassword()`, `request.getParameter(`), but not
    // `Secr3t(!)`.
    if let Some(open) = value.iter().position(|b| *b == b'(') {
        let ident = |s: &[u8]| {
            s.iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
        };
        let name = &value[..open];
        let args = &value[open + 1..];
        let args = args.strip_suffix(b")").unwrap_or(args);
        if !name.is_empty()
            && !name[0].is_ascii_digit()
            && ident(name)
            && args.split(|b| *b == b',').all(|a| ident(a.trim_ascii()))
        {
            return true;
        }
    }
    if value.len() >= 3
        && (value.iter().all(|b| *b == value[0]) || value.iter().all(|b| b"xX*.#-_".contains(b)))
    {
        return true;
    }
    // Compared without a copy: the value may be a credential.
    let word = || {
        value
            .iter()
            .filter(|b| **b != b'_' && **b != b'-')
            .map(u8::to_ascii_lowercase)
    };
    PLACEHOLDER_WORDS.iter().any(|w| word().eq(w.bytes()))
        || PLACEHOLDER_WORD_PREFIXES
            .iter()
            .any(|w| word().take(w.len()).eq(w.bytes()))
}

/// The trigger slot of the PEM rule's BEGIN keyword (line rules have slots
/// from 0).
const PEM_SLOT: usize = usize::MAX;

/// Keywords of the line rules: `(keyword, line-rule slot, folded)`.
///
/// A rule whose pattern has `(?i:` matches its keywords in any case, so its
/// keywords are *folded*: lower-cased, and searched in a lower-cased copy of
/// the text (`tOkEn`, `PassWord`), which keeps the search a case-sensitive
/// one with its SIMD prefilter. A case-sensitive rule with a keyword that a
/// folded keyword starts (`password=` after `passw`) is folded too. The
/// other rules' keywords are kept as written; those of 4 bytes or more are
/// searched in the lower-cased text as well ([`RuleSet`]), which finds every
/// place they start and some more: the rule's anchored regex, run on the
/// text as written, still decides the case.
fn line_keywords(rules: &[Rule]) -> Vec<(String, usize, bool)> {
    let line_rules: Vec<&Rule> = rules
        .iter()
        .filter(|r| matches!(r.kind, RuleKind::Line(_)))
        .collect();
    let any_case = |r: &Rule| matches!(r.kind, RuleKind::Line(p) if p.contains("(?i:"));
    let folded_kws: Vec<String> = line_rules
        .iter()
        .filter(|r| any_case(r))
        .flat_map(|r| r.keywords.iter().map(|k| k.to_ascii_lowercase()))
        .collect();
    let mut out = Vec::new();
    for (slot, r) in line_rules.iter().enumerate() {
        let folded = any_case(r)
            || r.keywords.iter().any(|k| {
                let k = k.to_ascii_lowercase();
                folded_kws.iter().any(|f| k.starts_with(f.as_str()))
            });
        for k in r.keywords {
            let k = if folded {
                k.to_ascii_lowercase()
            } else {
                (*k).to_owned()
            };
            if !out.contains(&(k.clone(), slot, folded)) {
                out.push((k, slot, folded));
            }
        }
    }
    out
}

impl RuleSet {
    /// The process-wide compiled rule set.
    pub fn get() -> &'static RuleSet {
        static SET: OnceLock<RuleSet> = OnceLock::new();
        SET.get_or_init(|| RuleSet::compile(RULES))
    }

    fn compile(rules: &'static [Rule]) -> RuleSet {
        let mut line = Vec::new();
        let mut pem = None;
        for (i, r) in rules.iter().enumerate() {
            match r.kind {
                RuleKind::Line(p) => {
                    let re = meta::Regex::builder()
                        .syntax(syntax::Config::new().unicode(false).utf8(false))
                        .build(p)
                        .expect("rule table regex");
                    let group = re.group_info().to_index(PatternID::ZERO, "s");
                    line.push(LineRule {
                        index: i,
                        re,
                        group,
                        pattern: p,
                        partial: PARTIAL_MATCH_RULES.contains(&r.id),
                        dfa: OnceLock::new(),
                    });
                }
                RuleKind::PemBlock { begin, end } => {
                    let begin = meta::Regex::builder()
                        .syntax(syntax::Config::new().unicode(false).utf8(false))
                        .build(begin)
                        .expect("rule table regex");
                    pem = Some((i, begin, compile(end)));
                }
            }
        }
        let all_kws = line_keywords(rules);
        // Rules with a keyword shorter than 3 bytes get their own pass: a
        // 2-byte keyword would force the shared SIMD search down to 2-byte
        // fingerprints, which match ordinary text all the time (measured:
        // half the throughput).
        let direct: Vec<usize> = {
            let mut d: Vec<usize> = all_kws
                .iter()
                .filter(|(k, _, _)| k.len() < 3)
                .map(|(_, slot, _)| *slot)
                .collect();
            d.dedup();
            d
        };
        // Every keyword of a rule goes to one search, so each rule sees its
        // hits in order (a hit's triggers may run past a later hit of the
        // same rule only within one search, where they are tried in order).
        // A case-sensitive rule with a 3-byte keyword has all its keywords
        // in the 3-byte search.
        let short = |slot: usize| {
            all_kws
                .iter()
                .any(|(k, s, f)| *s == slot && !*f && k.len() < 4)
        };
        let set = |short_search: bool| -> Vec<(String, usize)> {
            all_kws
                .iter()
                .filter(|(_, slot, _)| !direct.contains(slot) && short(*slot) == short_search)
                .map(|(k, slot, _)| {
                    let k = if short_search {
                        k.clone()
                    } else {
                        k.to_ascii_lowercase()
                    };
                    (k, *slot)
                })
                .collect()
        };
        // The PEM rule's BEGIN keyword is searched with the others; its
        // hits are handed to the caller ([`RuleSet::scan_lines`]).
        let mut folded = set(false);
        for r in rules {
            if matches!(r.kind, RuleKind::PemBlock { .. }) {
                folded.extend(
                    r.keywords
                        .iter()
                        .map(|k| (k.to_ascii_lowercase(), PEM_SLOT)),
                );
            }
        }
        let keyword_max = folded
            .iter()
            .map(|(k, _)| k.len())
            .chain(all_kws.iter().map(|(k, _, _)| k.len()))
            .max()
            .unwrap_or(0);
        let direct_any = (!direct.is_empty()).then(|| {
            let patterns: Vec<&str> = direct
                .iter()
                .map(|&slot| match rules[line[slot].index].kind {
                    RuleKind::Line(p) => p,
                    RuleKind::PemBlock { .. } => unreachable!("direct rules are line rules"),
                })
                .collect();
            meta::Regex::builder()
                .syntax(syntax::Config::new().unicode(false).utf8(false))
                .build_many(&patterns)
                .expect("rule table regex")
        });
        let exact3 = Keywords::build(&set(true));
        let folded = Keywords::build(&folded);
        let direct_keywords: Vec<String> = all_kws
            .iter()
            .filter(|(_, slot, _)| direct.contains(slot))
            .map(|(k, _, _)| k.clone())
            .collect();
        let keyword_filter = KeywordFilter::new(&Self::searches(
            &exact3.keywords,
            &folded.keywords,
            &direct_keywords,
        ));
        RuleSet {
            line,
            exact3,
            folded,
            keyword_filter,
            direct,
            direct_any,
            keyword_max,
            pem,
        }
    }

    /// The keyword filter's searches: the 3-byte one as written, the
    /// folded one in any case (each as its aho-corasick pass reports
    /// them), and every start of the `direct` rules' keywords.
    fn searches<'a>(
        exact3: &'a [String],
        folded: &'a [String],
        direct: &'a [String],
    ) -> [Search<'a>; 3] {
        [
            Search {
                keywords: exact3,
                any_case: false,
                then: None,
            },
            Search {
                keywords: folded,
                any_case: true,
                then: None,
            },
            Search {
                keywords: direct,
                any_case: false,
                then: Some(DIRECT_THEN),
            },
        ]
    }

    /// Where keywords start in `hay` before `limit`: each search's
    /// leftmost-longest hits (aho-corasick's), merged in order of start,
    /// the 3-byte search first at a tie. One SIMD pass where the processor
    /// has it, which also reports (as `DIRECT`) the places where a `direct`
    /// rule may match; else the two aho-corasick passes, the any-case one
    /// over a lower-cased copy of `hay` made in `lower`.
    fn keyword_hits(&self, hay: &[u8], limit: usize, lower: &mut Vec<u8>) -> Vec<Hit> {
        let mut hits = Vec::new();
        if let Some(f) = &self.keyword_filter {
            f.hits(hay, limit, &mut hits);
            return hits;
        }
        self.keyword_hits_ac(hay, limit, lower, &mut hits);
        hits
    }

    /// [`RuleSet::keyword_hits`] by the aho-corasick passes.
    fn keyword_hits_ac(&self, hay: &[u8], limit: usize, lower: &mut Vec<u8>, hits: &mut Vec<Hit>) {
        if lower.capacity() < hay.len() {
            // Grown while empty: the old buffer held text, and is wiped.
            lower.zeroize();
            lower.reserve(hay.len());
        }
        lower.clear();
        // One fused pass (a copy, then `make_ascii_lowercase`, ran at a
        // third of the speed).
        lower.extend(hay.iter().map(u8::to_ascii_lowercase));
        for (search, ac, text) in [
            (EXACT3, &self.exact3.ac, hay),
            (FOLDED, &self.folded.ac, &lower[..]),
        ] {
            for m in ac.find_iter(text) {
                if m.start() >= limit {
                    break;
                }
                hits.push(Hit {
                    start: m.start(),
                    search,
                    index: m.pattern().as_usize(),
                });
            }
        }
        hits.sort_unstable();
    }

    /// Every line-rule match starting in `hay[starts]`, in no particular
    /// order.
    ///
    /// `hay` is raw bytes: logs need not be UTF-8, and every rule is ASCII.
    /// Bytes of `hay` past `starts` are only context: a match may run into
    /// them, no match starts there. Bytes before it are look-behind only
    /// (the byte before a text that starts inside a line, for `^` and
    /// `\b`): no line and no match starts there. Lines longer than
    /// `segment` bytes are searched in segments of that many bytes from the
    /// line start; a match starts in a segment and runs at most
    /// [`RULE_REACH`] bytes past its end (the caller gives that much context
    /// past `starts` when it cuts a long line there). `lower` is scratch
    /// space for a lower-cased copy of `hay` up to the end of `starts` plus
    /// the longest keyword (the caller owns it, to reuse it and to zeroize
    /// it: it holds the text).
    ///
    /// `pem` receives, in increasing order, every place in `starts`
    /// where the PEM rule's BEGIN keyword starts: a block can start only
    /// there ([`RuleSet::pem_begin_at`] decides). The keyword is searched
    /// with the line rules' keywords rather than in a pass of its own.
    pub(crate) fn scan_lines(
        &self,
        hay: &[u8],
        starts: Range<usize>,
        segment: usize,
        lower: &mut Vec<u8>,
        out: &mut Vec<TokenMatch>,
        pem: &mut Vec<usize>,
    ) {
        let (behind, limit) = (starts.start, starts.end);
        // Keywords are searched a little past `limit`, so one that starts
        // before it and ends after it (a long line cut there) is found.
        let kw_end = limit
            .saturating_add(self.keyword_max.saturating_sub(1))
            .min(hay.len());
        let hits = self.keyword_hits(&hay[..kw_end], limit, lower);
        // Indexed by search (`EXACT3`, `FOLDED`); `DIRECT` hits are the
        // direct rules' (below).
        let searches = [&self.exact3.triggers, &self.folded.triggers];
        // Captures per line rule, made on first use.
        let mut caps: Vec<Option<regex_automata::util::captures::Captures>> =
            (0..self.line.len()).map(|_| None).collect();
        // Lazy DFA caches per line rule, for partial matches, made on first
        // use.
        let mut dfa_caches: Vec<Option<hybrid::dfa::Cache>> =
            (0..self.line.len()).map(|_| None).collect();
        // Per line rule: the segment of its last match and where that match
        // ended; no match of it may start before that in the same segment
        // (non-overlap; segments are searched independently).
        let mut last = vec![(usize::MAX, 0usize); self.line.len()];
        // The segment being searched: [seg_start, seg_end), matches reach
        // to reach_end.
        let (mut seg_start, mut seg_end, mut reach_end) = (0usize, 0usize, 0usize);
        for hit in hits.iter().filter(|h| h.search != DIRECT) {
            let triggers = searches[hit.search];
            let p = hit.start;
            if p >= limit {
                // Context only (none is reported).
                break;
            }
            for &(off, slot) in &triggers[hit.index] {
                let at = p + off;
                if at >= limit || at < behind {
                    continue;
                }
                if slot == PEM_SLOT {
                    pem.push(at);
                    continue;
                }
                if !(seg_start..seg_end).contains(&at) {
                    // Another line or segment: its bounds. Decided by where
                    // the rule is tried, not where the hit starts: a hit
                    // just before a segment boundary may trigger a keyword
                    // it hides that starts after it (`NPM_PWD` there:
                    // `npm_`, then `_pwd` from its last byte), and the
                    // other search's next hit may be back before it.
                    let ls = memchr::memrchr2(b'\n', b'\r', &hay[..at])
                        .map_or(0, |i| i + 1)
                        .max(behind);
                    let le =
                        memchr::memchr2(b'\n', b'\r', &hay[at..]).map_or(hay.len(), |i| at + i);
                    seg_start = ls + (at - ls) / segment * segment;
                    seg_end = le.min(seg_start.saturating_add(segment)).min(limit);
                    reach_end = le.min(seg_end.saturating_add(RULE_REACH));
                }
                if last[slot].0 == seg_start && at < last[slot].1 {
                    continue;
                }
                let rule = &self.line[slot];
                let c = caps[slot].get_or_insert_with(|| rule.re.create_captures());
                let input = Input::new(&hay[..reach_end])
                    .range(at..reach_end)
                    .anchored(Anchored::Yes);
                rule.re.search_captures(&input, c);
                let Some(m) = c.get_match() else {
                    // None in the window. Where the window ends at the
                    // reach (the line goes on), a match still possible
                    // there is masked from its start to the window's end
                    // (spec §4.1): a JWT, a URL password, a quoted value
                    // longer than the reach across a segment boundary. It
                    // starts in the segment, so it is over RULE_REACH long.
                    if rule.partial
                        && reach_end == seg_end.saturating_add(RULE_REACH)
                        && rule.alive_through(&mut dfa_caches[slot], hay, at, reach_end)
                    {
                        last[slot] = (seg_start, reach_end);
                        out.push(TokenMatch {
                            rule: &RULES[rule.index],
                            range: at..reach_end,
                        });
                    }
                    continue;
                };
                last[slot] = (seg_start, m.end());
                let part = rule.group.and_then(|g| c.get_group(g)).unwrap_or(m.span());
                if part.start < part.end && !rule.placeholder_at(hay, part) {
                    out.push(TokenMatch {
                        rule: &RULES[rule.index],
                        range: part.start..part.end,
                    });
                }
            }
        }
        // Rules with short keywords: searched apart from the keywords (no
        // rule matches a terminator, so matches stay within lines; a test
        // checks every line rule for that); a
        // match running more than RULE_REACH past its segment is masked up
        // to there, as the keyword rules' (their regex sees the text up to
        // there): dropping it left a long token visible when its line came
        // whole and masked it when the stream had cut the line (review,
        // session 10).
        //
        // One pass of all of them together finds the lines where any
        // matches (leftmost-first: where none is found from some point on,
        // no rule of them matches there). Only those lines are then searched
        // rule by rule, from the hit on (nothing of them matches before
        // it): each rule's own leftmost-first matches, as a search of the
        // whole buffer per rule finds, so one rule's match never hides
        // another rule's (a Twilio key inside a batch token is still found).
        // Text dense with such tokens is read up to three times, against
        // two for a pass per rule; logs hold few.
        //
        // Where the keyword filter ran, it gave the places where one of
        // these rules may match (search 2: a keyword, then two bytes of
        // `DIRECT_THEN`); the leftmost match from a point on is then the
        // first of them where the regex matches anchored.
        let Some(any) = &self.direct_any else { return };
        let mut starts = hits.iter().filter(|h| h.search == DIRECT).map(|h| h.start);
        let mut from = behind;
        while from < limit {
            let hit = if self.keyword_filter.is_some() {
                starts
                    .by_ref()
                    .filter(|&at| at >= from)
                    .find_map(|at| any.search(&Input::new(hay).range(at..).anchored(Anchored::Yes)))
            } else {
                any.search(&Input::new(hay).range(from..))
            };
            let Some(hit) = hit else {
                break;
            };
            if hit.start() >= limit {
                break;
            }
            let ls = memchr::memrchr2(b'\n', b'\r', &hay[..hit.start()])
                .map_or(0, |i| i + 1)
                .max(behind);
            let le = memchr::memchr2(b'\n', b'\r', &hay[hit.start()..])
                .map_or(hay.len(), |i| hit.start() + i);
            for &slot in &self.direct {
                let rule = &self.line[slot];
                let c = caps[slot].get_or_insert_with(|| rule.re.create_captures());
                let mut at = hit.start();
                while at < le {
                    // Look-around sees past the range, as in a whole-buffer
                    // search.
                    rule.re.search_captures(&Input::new(hay).range(at..le), c);
                    let Some(m) = c.get_match() else { break };
                    if m.start() >= limit {
                        break;
                    }
                    let seg_start = ls + (m.start() - ls) / segment * segment;
                    let seg_end = seg_start.saturating_add(segment);
                    let mut part = rule.group.and_then(|g| c.get_group(g)).unwrap_or(m.span());
                    part.end = part.end.min(seg_end.saturating_add(RULE_REACH));
                    if part.start < part.end && !rule.placeholder_at(hay, part) {
                        out.push(TokenMatch {
                            rule: &RULES[rule.index],
                            range: part.start..part.end,
                        });
                    }
                    // Segments are searched independently (spec §4.1): a
                    // match running into the next one does not hide a match
                    // that starts there, as a stream cut there would not.
                    at = m.end().min(seg_end).max(m.start() + 1);
                }
            }
            from = le;
        }
    }

    /// The PEM block rule.
    pub(crate) fn pem_rule(&self) -> Option<&'static Rule> {
        self.pem.as_ref().map(|(i, _, _)| &RULES[*i])
    }

    /// The end of the PEM BEGIN marker that starts at `hay[at]`, if one
    /// does (the marker must end within `hay`).
    pub(crate) fn pem_begin_at(&self, hay: &[u8], at: usize) -> Option<usize> {
        let (_, begin, _) = self.pem.as_ref()?;
        let input = Input::new(hay).range(at..).anchored(Anchored::Yes);
        begin.search(&input).map(|m| m.end())
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
        let mut lower = zeroize::Zeroizing::new(Vec::new());
        let mut pem_starts = Vec::new();
        self.scan_lines(
            text,
            0..text.len(),
            usize::MAX,
            &mut lower,
            &mut out,
            &mut pem_starts,
        );
        // The PEM block rule: a block, then the next BEGIN after its end.
        if let Some(rule) = self.pem_rule() {
            let mut from = 0;
            for start in pem_starts {
                if start < from {
                    continue;
                }
                let Some(begin_end) = self.pem_begin_at(text, start) else {
                    continue;
                };
                let end = pem_block_end(self, text, begin_end);
                out.push(TokenMatch {
                    rule,
                    range: start..end,
                });
                from = end.max(begin_end);
            }
        }
        out.sort_by_key(|m| (m.range.start, rule_index(m.rule)));
        out
    }
}

/// Where a PEM block whose BEGIN marker ends at `after_begin` ends: the end of
/// the next END marker within [`PEM_MAX_LINES`] line feeds, else just before
/// the line feed after that many (or the end of the text).
pub(crate) fn pem_block_end(set: &RuleSet, text: &[u8], after_begin: usize) -> usize {
    let rest = &text[after_begin..];
    let window_end = memchr::memchr_iter(b'\n', rest)
        .nth(PEM_MAX_LINES)
        .unwrap_or(rest.len());
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

    /// Lint messages quote rule descriptions, and the CLI scrubs all its
    /// output with the rules: a description that matched a rule would be
    /// mangled (and would read like a leak).
    #[test]
    fn no_rule_description_matches_a_rule() {
        for r in rules() {
            let hits: Vec<_> = find_tokens(r.description).collect();
            assert!(hits.is_empty(), "{}: its description matches a rule", r.id);
        }
    }

    use super::*;

    #[test]
    fn partial_match_rules_are_line_rules_of_the_table() {
        for id in PARTIAL_MATCH_RULES {
            let rule = rules().iter().find(|r| r.id == *id);
            assert!(
                matches!(rule.map(|r| &r.kind), Some(RuleKind::Line(_))),
                "{id}: not a line rule of the table"
            );
        }
    }

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

    /// The rule table and the placeholder lists of `spec/redaction.md` §3,
    /// as they must read there (generated from the code).
    fn spec_text() -> String {
        let mut t =
            String::from("| id | keywords | secret part matches | by name |\n|---|---|---|---|\n");
        for r in rules() {
            let (pattern, any_case) = match r.kind {
                RuleKind::Line(p) => (format!("`{}`", p.replace('|', "\\|")), p.contains("(?i:")),
                RuleKind::PemBlock { .. } => ("PEM block, §3.1".to_owned(), false),
            };
            let kws: Vec<String> = r.keywords.iter().map(|k| format!("`{k}`")).collect();
            let kws = kws.join(" ") + if any_case { " (any case)" } else { "" };
            let by_name = if r.placeholders { "yes" } else { "" };
            t += &format!("| `{}` | {kws} | {pattern} | {by_name} |\n", r.id);
        }
        t += "\n";
        for (name, list) in [
            ("Openers", PLACEHOLDER_OPENERS),
            ("Code", PLACEHOLDER_CODE),
            ("Words", PLACEHOLDER_WORDS),
            ("Word prefixes", PLACEHOLDER_WORD_PREFIXES),
        ] {
            let items: Vec<String> = list.iter().map(|k| format!("`{k}`")).collect();
            t += &format!("- {name}: {}\n", items.join(" "));
        }
        t
    }

    /// `spec/redaction.md` holds exactly the generated text between its
    /// markers; the failure message is the text to paste.
    #[test]
    fn spec_tables_mirror_the_rules() {
        let spec = include_str!("../../spec/redaction.md");
        let begin = "<!-- rules: generated by src/redact/rules.rs spec_text() -->\n";
        let end = "<!-- end rules -->";
        let start = spec.find(begin).expect("begin marker") + begin.len();
        let stop = spec[start..].find(end).expect("end marker") + start;
        let want = spec_text();
        assert!(
            spec[start..stop] == want,
            "spec/redaction.md §3 differs from the rule table; it should read:\n{want}"
        );
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
    fn keyword_scan_equals_per_line_find_iter() {
        // The anchored keyword scan must agree with plain leftmost-first
        // searching, rule by rule and line by line.
        let text = format!(
            "a hvs.{} s.FAKEfake0123456789ABCDEF\npassword=FAKEpass1 token: FAKEFAKE99 PASSWORD=FAKEpass2\r\
             Authorization: Bearer {GHP} bearer abcdefghijklmnop1234 https://u:p@h ://x:y@z\n\
             token=aaaaaaaa token=bbbbbbbbtoken=cccccccc AKIAFAKEFAKEFAKE1234AKIA\n\
             files. s.short b.{batch_sk} r.FAKEfake0123456789ABCDEF SK{hex}\n\
             no rule here\nSK{hex}x SK{hex} s.FAKEfake0123456789ABCDEF s.FAKEfake0123456789ABCDEF",
            "CAESIFAKE".repeat(4),
            // A Twilio key inside a batch token: the rules with short
            // keywords are searched together first, and one's match must
            // not hide the other's.
            batch_sk = [
                "FAKE".repeat(5),
                "SK".to_string() + &"0123456789abcdef".repeat(2),
                "FAKE".repeat(15)
            ]
            .join("-"),
            hex = "fedcba9876543210".repeat(2),
        );
        let mut scanned: Vec<(&str, std::ops::Range<usize>)> = Vec::new();
        let mut v = Vec::new();
        RuleSet::get().scan_lines(
            text.as_bytes(),
            0..text.len(),
            usize::MAX,
            &mut Vec::new(),
            &mut v,
            &mut Vec::new(),
        );
        scanned.extend(v.iter().map(|m| (m.rule_id(), m.range.clone())));
        scanned.sort_by_key(|(id, r)| (r.start, *id));
        let mut naive = Vec::new();
        let mut base = 0;
        for line in text.split(['\n', '\r']) {
            for r in rules() {
                if let RuleKind::Line(p) = r.kind {
                    let re = compile(p);
                    for c in re.captures_iter(line.as_bytes()) {
                        let m = c.name("s").unwrap_or_else(|| c.get(0).unwrap());
                        if r.placeholders && is_placeholder(m.as_bytes()) {
                            continue;
                        }
                        naive.push((r.id, base + m.start()..base + m.end()));
                    }
                }
            }
            base += line.len() + 1;
        }
        naive.sort_by_key(|(id, r)| (r.start, *id));
        assert_eq!(scanned, naive);
        assert!(scanned.len() >= 18, "{scanned:?}");
        for id in ["twilio-api-key", "vault-legacy-token"] {
            assert!(
                scanned.iter().filter(|(i, _)| *i == id).count() >= 3,
                "{id}"
            );
        }
    }

    /// The short-keyword rules by the letter of spec §4.1, as an oracle:
    /// each rule's leftmost-first matches, each line and each segment of it
    /// searched on its own (look-behind still sees the byte before), a
    /// match clipped `RULE_REACH` past its segment. `scan_lines` searches
    /// them all together first (`direct_any`) to pick the lines.
    fn direct_by_rule(
        set: &RuleSet,
        hay: &[u8],
        behind: usize,
        limit: usize,
        segment: usize,
    ) -> Vec<(&'static str, Range<usize>)> {
        let mut v = Vec::new();
        let mut ls = behind;
        while ls < limit {
            let le = memchr::memchr2(b'\n', b'\r', &hay[ls..]).map_or(hay.len(), |i| ls + i);
            let mut ss = ls;
            while ss < le.min(limit) {
                let se = ss.saturating_add(segment);
                for &slot in &set.direct {
                    let rule = &set.line[slot];
                    for c in rule.re.captures_iter(Input::new(hay).range(ss..le)) {
                        let Some(m) = c.get_match() else { continue };
                        if m.start() >= limit || m.start() >= se {
                            break;
                        }
                        let mut part = rule.group.and_then(|g| c.get_group(g)).unwrap_or(m.span());
                        part.end = part.end.min(se.saturating_add(RULE_REACH));
                        if part.start < part.end && !rule.placeholder_at(hay, part) {
                            v.push((RULES[rule.index].id, part.start..part.end));
                        }
                    }
                }
                ss = se;
            }
            ls = le + 1;
        }
        v.sort_by_key(|(id, r)| (r.start, *id));
        v
    }

    proptest::proptest! {
        #[test]
        fn short_keyword_rules_match_a_search_per_rule_line_and_segment(
            pieces in proptest::collection::vec(proptest::sample::select(vec![
                "s.", "r.", "b.", "SK", "FAKEfake", "FAKEfake01234567",
                "0123456789abcdef", "-", "_", ".", " ", "x", "\n", "\r\n", "\r",
                // Batch tokens (80 or more) that run over segments and
                // hold the start of another.
                "b.FAKEfake0123456789FAKEfake0123456789FAKEfake0123456789FAKEfake0123456789FAKEfake",
                "-b.FAKEfake0123456789FAKEfake0123456789FAKEfake0123456789FAKEfake0123456789FAKEfake",
                "-SK0123456789abcdef0123456789abcdef",
            ]), 0..80),
            behind in 0usize..2,
            limit_at in 0.0f64..=1.0,
            segment in proptest::sample::select(vec![8usize, 24, 64, usize::MAX]),
        ) {
            let text = pieces.concat();
            let hay = text.as_bytes();
            let behind = behind.min(hay.len());
            let limit = behind + ((hay.len() - behind) as f64 * limit_at) as usize;
            let set = RuleSet::get();
            let mut found = Vec::new();
            set.scan_lines(hay, behind..limit, segment, &mut Vec::new(), &mut found, &mut Vec::new());
            let mut got: Vec<(&str, Range<usize>)> = found
                .iter()
                .filter(|m| matches!(m.rule_id(), "vault-legacy-token" | "twilio-api-key"))
                .map(|m| (m.rule_id(), m.range.clone()))
                .collect();
            got.sort_by_key(|(id, r)| (r.start, *id));
            proptest::prop_assert_eq!(got, direct_by_rule(set, hay, behind, limit, segment));
        }
    }

    /// Every keyword of both searches, with a random change of case, cut
    /// short, or followed by its own start (`tokentoken`, `://://`).
    fn keyword_pieces() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let set = RuleSet::get();
        let kws: Vec<String> = set
            .exact3
            .keywords
            .iter()
            .chain(&set.folded.keywords)
            .cloned()
            .collect();
        let others: Vec<&'static [u8]> = vec![
            b" ",
            b"\n",
            b"\r",
            b"x",
            b"0",
            b"=",
            b":",
            b"\xc3\xa9",
            b"\xff",
            b"\x80",
            b"\0",
            b"\xf4",
            b"\xe1",
            b"\xba",
            b"\xaf",
            b"npm_pwd",
            b"hvs.",
            b"api-----begin",
            b"passwordtoken",
            b"x-access-token",
            b"ss.ab",
            b"SKab",
        ];
        prop_oneof![
            3 => (proptest::sample::select(kws), any::<u64>(), 0usize..3).prop_map(
                |(k, case, how)| {
                    let mut b: Vec<u8> = k
                        .bytes()
                        .enumerate()
                        .map(|(i, c)| if case >> (i % 64) & 1 == 1 { c.to_ascii_uppercase() } else { c })
                        .collect();
                    match how {
                        0 => {}
                        1 => b.truncate(b.len() - 1),
                        _ => b.extend_from_slice(&k.as_bytes()[..2]),
                    }
                    b
                }
            ),
            2 => proptest::sample::select(others).prop_map(|b| b.to_vec()),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        /// The one SIMD pass (where the processor has it) and its plain-code
        /// twin (everywhere) report the hits of the two aho-corasick passes:
        /// keywords in any case, cut short, overlapping, beside bytes of
        /// 0x80 and above, at the end of the text and of a limit.
        #[test]
        fn the_keyword_filter_finds_the_hits_of_the_aho_corasick_passes(
            pieces in proptest::collection::vec(keyword_pieces(), 0..60),
            limit_at in 0.0f64..=1.0,
        ) {
            let hay = pieces.concat();
            let limit = (hay.len() as f64 * limit_at) as usize;
            let set = RuleSet::get();
            let mut want = Vec::new();
            set.keyword_hits_ac(&hay, limit, &mut Vec::new(), &mut want);
            // Search 2: every `direct` keyword followed by two bytes of
            // `DIRECT_THEN` (a fingerprint, not confirmed).
            // The `direct` rules' keywords, as `compile` gives them.
            let direct: &Vec<String> = &set
                .direct
                .iter()
                .flat_map(|&slot| RULES[set.line[slot].index].keywords)
                .map(|k| k.to_string())
                .collect();
            let mut want_direct = want.clone();
            for at in 0..limit {
                if let Some(index) = direct.iter().position(|k| {
                    hay[at..].starts_with(k.as_bytes())
                        && hay[at..].len() >= 4
                        // By their low 7 bits, as the kernel looks bytes up.
                        && hay[at + 2..at + 4].iter().all(|b| DIRECT_THEN.contains(&(b & 0x7f)))
                }) {
                    want_direct.push(Hit { start: at, search: DIRECT, index });
                }
            }
            want_direct.sort_unstable();
            let got = set.keyword_hits(&hay, limit, &mut Vec::new());
            if set.keyword_filter.is_some() {
                proptest::prop_assert_eq!(&got, &want_direct);
            } else {
                proptest::prop_assert_eq!(&got, &want);
            }
            let plain = KeywordFilter::build(&RuleSet::searches(
                &set.exact3.keywords,
                &set.folded.keywords,
                direct,
            ))
            .expect("the rules' keywords suit the filter");
            let mut twin = Vec::new();
            plain.hits(&hay, limit, &mut twin);
            proptest::prop_assert_eq!(&twin, &want_direct);
        }
    }

    /// Every match of a rule with a keyword under 3 bytes has two bytes of
    /// `DIRECT_THEN` after its keyword (the keyword filter's fingerprint of
    /// those rules): any other byte there, and the rule does not match.
    #[test]
    fn direct_rules_follow_their_keywords_with_direct_then_bytes() {
        let set = RuleSet::get();
        let mut tried = std::collections::BTreeSet::new();
        let mut all = std::collections::BTreeSet::new();
        for &slot in &set.direct {
            let rule = &set.line[slot];
            let matches = |text: &[u8]| {
                rule.re
                    .search(&Input::new(text).range(1..).anchored(Anchored::Yes))
                    .is_some()
            };
            for k in RULES[rule.index].keywords {
                all.insert(*k);
                // Runs of the lengths the rules take (24, 32, 80 or more),
                // between spaces.
                for len in [24, 32, 80, 120] {
                    for filler in ["a", "0", "F", "f", "_", "-"] {
                        let ok = format!(" {k}{} ", filler.repeat(len)).into_bytes();
                        if !matches(&ok) {
                            continue;
                        }
                        tried.insert(*k);
                        // Any byte outside DIRECT_THEN right after the
                        // keyword, or one further, and it does not match.
                        for b in (0u8..=255).filter(|b| !DIRECT_THEN.contains(b)) {
                            for at in 0..2 {
                                let mut text = ok.clone();
                                text[1 + k.len() + at] = b;
                                assert!(
                                    !matches(&text),
                                    "{} after {k:?} at {at}: byte {b:#x}",
                                    RULES[rule.index].id
                                );
                            }
                        }
                    }
                }
            }
        }
        // Every direct keyword was tried with some run.
        assert_eq!(tried, all);
        assert!(all.len() >= 4, "{all:?}");
    }

    /// The rules' keywords suit the filter (3 bytes or more, ASCII), so
    /// a processor with AVX-512 VBMI uses it.
    #[test]
    fn the_keyword_filter_is_used_where_the_processor_has_it() {
        let set = RuleSet::get();
        #[cfg(target_arch = "x86_64")]
        let simd = std::arch::is_x86_feature_detected!("avx512vbmi")
            && std::arch::is_x86_feature_detected!("avx512bw");
        #[cfg(not(target_arch = "x86_64"))]
        let simd = false;
        assert_eq!(set.keyword_filter.is_some(), simd);
    }

    /// The BEGIN keyword is searched with the others, non-overlapping: a
    /// marker that starts inside another keyword's hit (`api-` then
    /// `-----BEGIN` from its dash) is found through the hit's triggers, in
    /// the one-shot scan and in the stream.
    #[test]
    fn a_pem_marker_that_starts_inside_another_keyword_is_found() {
        let block = "-----BEGIN RSA PRIVATE KEY-----\nMIIFAKEFAKE\n-----END RSA PRIVATE KEY-----";
        let text = format!("api{block}\n");
        let found = RuleSet::get().find_all(&text);
        assert!(
            found
                .iter()
                .any(|m| m.rule_id() == "private-key" && m.range == (3..3 + block.len())),
            "{found:?}"
        );
        let out = crate::redact::redact(&text);
        assert_eq!(out, "api[REDACTED:private-key]\n");
    }

    #[test]
    fn keywords_starting_inside_a_hit_are_tried() {
        let set = RuleSet::get();
        let mut v = Vec::new();
        // `AKIA` is the leftmost-longest hit; `AIza` starts at its last byte.
        let text = format!("AKIAIza{}", "F".repeat(35));
        set.scan_lines(
            text.as_bytes(),
            0..text.len(),
            usize::MAX,
            &mut Vec::new(),
            &mut v,
            &mut Vec::new(),
        );
        assert!(v.iter().any(|m| m.rule_id() == "google-api-key"), "{v:?}");
        // Teddy, the SIMD searcher, takes at most 64 patterns; the folded
        // search is measured in its "fat" form (more than 32 patterns), the
        // 3-byte one in its "slim" form (at most 32).
        let folded = set.folded.ac.patterns_len();
        assert!(
            (33..=64).contains(&folded),
            "the folded keyword search was measured with 33 to 64 keywords: {folded}"
        );
        let exact3 = set.exact3.ac.patterns_len();
        assert!(
            exact3 <= 32,
            "keep the 3-byte keyword search within 32 patterns: {exact3}"
        );
    }
}
