//! The work dir once a job action has run in it: untrusted (`spec/resolver.md`
//! G8).
//!
//! [`GitJob::run_action`] is the one way the worker lets an action touch a
//! checkout. Around the action it:
//!
//! 1. snapshots `.git/config` (written by the worker's own clone);
//! 2. when the action runs as another user (`spec/resolver.md` W9), hands
//!    the work dir to that user ([`chown_tree`]), runs the action, and takes
//!    the work dir back before anything else looks at it; otherwise runs the
//!    action;
//! 3. checks that `.git` is still a plain directory without `commondir`,
//!    `config.worktree` or `worktrees` ([`check_git_dir`]); otherwise the
//!    work dir is removed (a symlinked `.git` is removed, not followed), so a
//!    `reuse` work dir is cloned afresh next time, and the job fails
//!    `action_failed`;
//! 4. puts the snapshot back, even over a directory or symlink the action
//!    left in its place;
//! 5. reports the action's own failure (`action_failed`);
//! 6. refuses a restored config that holds keys able to redirect or
//!    intercept the credential ([`GitJob::check_config`]), as a last check
//!    that nothing else wrote it.
//!
//! Keeping the sequence here, not in the worker, means the worker cannot
//! forget a step or run them out of order.

use std::path::Path;

use super::{GitError, GitJob, GitOp};
use crate::error::ErrorCode;

impl GitJob {
    /// Runs `action` in the checkout at `work_dir` and makes the checkout
    /// trustworthy again afterwards (see the module docs). With `owner`
    /// (uid, gid), the work dir belongs to that user while the action runs.
    pub fn run_action(
        &self,
        work_dir: &Path,
        owner: Option<(u32, u32)>,
        action: impl FnOnce() -> Result<(), String>,
    ) -> Result<(), ActionError> {
        let config_path = work_dir.join(".git").join("config");
        let trusted = std::fs::read(&config_path)
            .map_err(|e| GitError::new(GitOp::Checkout, format!("cannot read .git/config: {e}")))?;
        let result = match owner {
            None => action(),
            Some((uid, gid)) => {
                let ours = own_ids();
                let handed = chown_tree(work_dir, uid, gid, Handing::Over);
                // Taken back whatever happened: a half-handed tree too.
                let result = handed.is_ok().then(action);
                chown_tree(work_dir, ours.0, ours.1, Handing::Back).map_err(|e| {
                    GitError::new(
                        GitOp::Checkout,
                        format!("cannot take the work dir back from the action's user: {e}"),
                    )
                })?;
                handed.map_err(|e| {
                    GitError::new(
                        GitOp::Checkout,
                        format!("cannot hand the work dir to the action's user: {e}"),
                    )
                })?;
                result.unwrap_or(Ok(()))
            }
        };
        if let Err(m) = check_git_dir(work_dir) {
            let _ = std::fs::remove_dir_all(work_dir);
            return Err(ActionError::Action(m));
        }
        restore_file(&config_path, &trusted).map_err(|e| {
            GitError::new(GitOp::Checkout, format!("cannot restore .git/config: {e}"))
        })?;
        result.map_err(ActionError::Action)?;
        Ok(self.check_config(work_dir)?)
    }

    /// Refuses a repository configuration (`<dest>/.git/config`) that holds
    /// a key able to redirect or intercept the credential: URL-specific
    /// `http.*` settings (proxy, TLS trust, `curloptResolve`), `url.*`
    /// rewrites, `include`/`includeIf`, `credential.*`, `core.sshCommand`,
    /// `core.gitProxy`, `core.worktree`. `git clone` writes none of them, so
    /// their presence means something other than the worker wrote the file.
    pub(crate) fn check_config(&self, dest: &Path) -> Result<(), GitError> {
        let path = dest.join(".git").join("config");
        let path_s = path
            .to_str()
            .ok_or_else(|| GitError::new(GitOp::Checkout, "the work dir path is not UTF-8"))?;
        let keys = self.run(
            GitOp::Checkout,
            None,
            &["config", "--file", path_s, "--list", "--name-only"],
            None,
            None,
        )?;
        if let Some(bad) = keys.lines().find(|k| forbidden_config_key(k)) {
            return Err(GitError::new(
                GitOp::Checkout,
                format!("the work dir's .git/config sets {bad:?}, which the worker did not write"),
            ));
        }
        Ok(())
    }
}

/// How [`GitJob::run_action`] fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionError {
    /// The action failed or broke the checkout (`action_failed`).
    Action(String),
    /// git, or the worker's own file handling, failed (`git_failed`).
    Git(GitError),
}

impl ActionError {
    /// The error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            ActionError::Action(_) => ErrorCode::ActionFailed,
            ActionError::Git(e) => e.code(),
        }
    }
}

impl From<GitError> for ActionError {
    fn from(e: GitError) -> ActionError {
        ActionError::Git(e)
    }
}

/// The worker's effective user and group.
fn own_ids() -> (u32, u32) {
    // SAFETY: neither call can fail or touches memory of ours.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

/// Which way [`chown_tree`] goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Handing {
    /// To the action's user: a file with other hard links is left as it is,
    /// so a link planted by an earlier action in a reused work dir (to a
    /// file of the worker's, elsewhere) is never given away.
    Over,
    /// Back to the worker: everything.
    Back,
}

/// Changes the owner of `root` and everything under it, never following a
/// symlink (`lchown`) and never leaving `root`'s file system (a mount
/// point inside is not entered). Nothing else runs in the tree meanwhile:
/// the action has not started, or it has ended and its PID namespace with
/// it.
fn chown_tree(root: &Path, uid: u32, gid: u32, way: Handing) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::symlink_metadata(root)?.dev();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.dev() != dev {
            continue;
        }
        let is_dir = meta.file_type().is_dir();
        if way == Handing::Over && !is_dir && meta.nlink() > 1 {
            continue;
        }
        std::os::unix::fs::lchown(&path, Some(uid), Some(gid))?;
        if is_dir {
            for entry in std::fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        }
    }
    Ok(())
}

/// Replaces `path` with `content`, even if the action made it a directory or
/// a symlink.
fn restore_file(path: &Path, content: &[u8]) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path)?,
        Ok(_) => std::fs::remove_file(path)?,
        Err(_) => {}
    }
    std::fs::write(path, content)
}

/// Whether a repository config key could redirect or intercept the
/// credential (see [`GitJob::check_config`]). Keys are compared in git's
/// canonical lowercase form.
fn forbidden_config_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["http.", "url.", "include.", "includeif.", "credential."]
        .iter()
        .any(|p| k.starts_with(p))
        || ["core.sshcommand", "core.gitproxy", "core.worktree"].contains(&k.as_str())
}

/// Checks that `<work_dir>/.git` is a real directory (not a symlink) without
/// the files that make git read configuration or objects from elsewhere
/// (`commondir`, `config.worktree`, `worktrees/`). A job action could plant
/// any of them; the worker never creates them.
pub fn check_git_dir(work_dir: &Path) -> Result<(), String> {
    let git_dir = work_dir.join(".git");
    let meta = std::fs::symlink_metadata(&git_dir)
        .map_err(|e| format!("{} is not usable: {e}", git_dir.display()))?;
    if !meta.file_type().is_dir() {
        return Err(format!(
            "{} is not a plain directory (a symlink or a file); refusing to run git in it",
            git_dir.display()
        ));
    }
    for name in ["commondir", "config.worktree", "worktrees"] {
        if std::fs::symlink_metadata(git_dir.join(name)).is_ok() {
            return Err(format!(
                "{} contains {name}, which the worker never writes; refusing to run git in it",
                git_dir.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand over and take back: every entry changes owner, symlinks are not
    /// followed, and a hard-linked file is never handed over.
    #[test]
    fn chown_tree_hands_over_and_takes_back() {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            own_ids().0,
            0,
            "this test needs root (chown); CI runs as root"
        );
        let outside = tempfile::tempdir().unwrap();
        let kept = outside.path().join("kept");
        std::fs::write(&kept, "worker's").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f"), "x").unwrap();
        std::os::unix::fs::symlink(&kept, root.join("a/link")).unwrap();
        std::fs::hard_link(&kept, root.join("a/hard")).unwrap();
        chown_tree(root, 65534, 65534, Handing::Over).unwrap();
        let uid = |p: &Path| std::fs::symlink_metadata(p).unwrap().uid();
        for p in ["", "a", "a/b", "a/b/f", "a/link"] {
            assert_eq!(uid(&root.join(p)), 65534, "{p}");
        }
        assert_eq!(
            uid(&kept),
            0,
            "a symlink was followed or a hard link handed over"
        );
        chown_tree(root, 0, 0, Handing::Back).unwrap();
        for p in ["", "a", "a/b", "a/b/f", "a/link", "a/hard"] {
            assert_eq!(uid(&root.join(p)), 0, "{p}");
        }
    }

    #[test]
    fn forbidden_config_keys() {
        for bad in [
            "http.http://h/.proxy",
            "http.https://h/.sslverify",
            "url.http://evil/.insteadof",
            "include.path",
            "includeIf.gitdir:/x.path",
            "credential.helper",
            "core.sshCommand",
        ] {
            assert!(forbidden_config_key(bad), "{bad}");
        }
        for ok in ["core.bare", "remote.origin.url", "branch.main.remote"] {
            assert!(!forbidden_config_key(ok), "{ok}");
        }
    }
}
