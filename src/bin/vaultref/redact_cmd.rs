//! `vaultref redact`: a streaming filter from stdin to stdout.
//!
//! Secrets files hold one secret per line. A multi-line secret is written as a
//! heredoc: a line `<<WORD` opens it, the lines up to a line that is exactly
//! `WORD` are its lines (joined with `\n`, no final newline). A leading UTF-8
//! byte-order mark is dropped, empty lines are skipped and a trailing `\r` is
//! dropped; every other byte, spaces and tabs included, is part of the secret.
//! See `spec/redaction.md` §7.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use secrecy::SecretString;
use vaultref::redact::{
    DEFAULT_MIN_SECRET_LENGTH, MIN_MASKABLE_LENGTH, RedactWriter, RedactorBuilder,
};
use zeroize::Zeroizing;

#[derive(Args)]
pub struct RedactArgs {
    /// A file of secrets to mask (repeatable): one per line, `<<WORD` ... `WORD` for multi-line.
    #[arg(long = "secrets-file", value_name = "FILE")]
    secrets_files: Vec<PathBuf>,
    /// Turn off the token rule table (mask registered secrets only).
    #[arg(long)]
    no_builtin_rules: bool,
    /// Refuse secrets shorter than N characters.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MIN_SECRET_LENGTH)]
    min_secret_length: usize,
    /// Marker written in place of a registered secret.
    #[arg(long, value_name = "TEXT", default_value = vaultref::redact::DEFAULT_REPLACEMENT)]
    replacement: String,
}

/// A secret read from a file, with where it came from (for messages).
struct FileSecret {
    value: SecretString,
    line: usize,
}

/// Parses a secrets file (see the module doc).
fn parse_secrets(text: &str) -> Result<Vec<FileSecret>, String> {
    // A byte-order mark (editors on some systems write one) is not part of
    // the first secret: left in, it would make that secret unmaskable.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut lines = text.split('\n').enumerate();
    while let Some((i, raw)) = lines.next() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.is_empty() {
            continue;
        }
        if let Some(word) = line.strip_prefix("<<") {
            if word.is_empty() || word.contains(char::is_whitespace) {
                return Err(format!("line {}: `<<` needs a terminator word", i + 1));
            }
            let mut body = Zeroizing::new(String::new());
            let mut closed = false;
            let mut first = true;
            for (_, raw) in lines.by_ref() {
                let l = raw.strip_suffix('\r').unwrap_or(raw);
                if l == word {
                    closed = true;
                    break;
                }
                if !first {
                    body.push('\n');
                }
                first = false;
                body.push_str(l);
            }
            if !closed {
                return Err(format!(
                    "line {}: multi-line secret opened here is never closed",
                    i + 1
                ));
            }
            out.push(FileSecret {
                value: SecretString::from(body.to_string()),
                line: i + 1,
            });
        } else {
            out.push(FileSecret {
                value: SecretString::from(line.to_string()),
                line: i + 1,
            });
        }
    }
    Ok(out)
}

pub fn run(args: RedactArgs) -> ExitCode {
    if args.min_secret_length < MIN_MASKABLE_LENGTH {
        errln!(
            "error[config_invalid]: --min-secret-length must be at least {MIN_MASKABLE_LENGTH}: \
             shorter secrets could not be masked"
        );
        return ExitCode::from(2);
    }
    // The marker is written into the output: one that looks like a
    // credential would put a credential-shaped string into every log.
    if vaultref::redact::find_tokens(&args.replacement)
        .next()
        .is_some()
    {
        errln!(
            "error[config_invalid]: --replacement looks like a credential; choose a plain marker"
        );
        return ExitCode::from(2);
    }
    let mut builder = RedactorBuilder::new()
        .min_secret_length(args.min_secret_length)
        .builtin_rules(!args.no_builtin_rules)
        .replacement(args.replacement.clone());
    for path in &args.secrets_files {
        let text = match std::fs::read(path) {
            Ok(b) => match String::from_utf8(b) {
                Ok(s) => Zeroizing::new(s),
                Err(_) => {
                    errln!(
                        "error[config_invalid]: {}: secrets file is not UTF-8",
                        path.display()
                    );
                    return ExitCode::from(2);
                }
            },
            Err(e) => {
                errln!(
                    "error[config_invalid]: {}: cannot read secrets file: {e}",
                    path.display()
                );
                return ExitCode::from(2);
            }
        };
        let secrets = match parse_secrets(&text) {
            Ok(s) => s,
            Err(msg) => {
                errln!("error[config_invalid]: {}: {msg}", path.display());
                return ExitCode::from(2);
            }
        };
        for s in secrets {
            if let Err(e) = builder.add_secret(&s.value) {
                errln!(
                    "error[{}]: {}:{}: {}",
                    e.code(),
                    path.display(),
                    s.line,
                    e.message()
                );
                return ExitCode::from(2);
            }
        }
    }
    let redactor = match builder.build() {
        Ok(r) => r,
        Err(e) => {
            errln!("error[{}]: {}", e.code(), e.message());
            return ExitCode::from(2);
        }
    };
    match pump(&redactor) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe downstream is the reader's choice, not a failure.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            errln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Copies stdin to stdout through the redactor, flushing after every read so
/// live logs keep flowing.
fn pump(redactor: &vaultref::redact::Redactor) -> io::Result<()> {
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let stdout = io::stdout();
    let mut w = RedactWriter::new(redactor, stdout.lock());
    let mut buf = Zeroizing::new(vec![0u8; 64 * 1024]);
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
        w.flush()?;
    }
    w.finish()?.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn secrets_file_format() {
        let text = "FAKE-one-value\r\n\n<<END\nline one\n\nline three\nEND\nFAKE-two-value";
        let got: Vec<String> = parse_secrets(text)
            .unwrap()
            .iter()
            .map(|s| s.value.expose_secret().to_string())
            .collect();
        assert_eq!(
            got,
            ["FAKE-one-value", "line one\n\nline three", "FAKE-two-value"]
        );
        assert!(parse_secrets("<<END\nx\n").is_err());
        assert!(parse_secrets("<<\n").is_err());
    }
}
