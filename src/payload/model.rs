//! The typed `codex_exec` job: what a worker acts on once validation passed.
//!
//! The model mirrors the JSON shape (serde, camelCase names) but is only
//! produced by [`validate`](super::validate), which is why its fields are
//! private: holding a [`CodexExecJob`] means the job passed every check.
//! Unknown payload members are not kept: a worker must not act on fields it
//! does not know (`spec/codex-exec.md` §4).
//!
//! Auth refs are held parsed ([`SecretRef`]), serialised back to their
//! canonical string.

use serde::{Deserialize, Serialize};

use crate::secret_ref::SecretRef;

/// A validated `codex_exec` job: `{"type": "codex_exec", "payload": {...}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "codex_exec")]
pub struct CodexExecJob {
    payload: CodexExecPayload,
}

/// The payload of a [`CodexExecJob`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodexExecPayload {
    repository: String,
    instruction: String,
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    git_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    workdir_mode: Option<WorkdirMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    publish: Option<Publish>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    codex: Option<CodexOptions>,
    #[serde(default, with = "ref_serde", skip_serializing_if = "Option::is_none")]
    repo_auth_ref: Option<SecretRef>,
    #[serde(default, with = "ref_serde", skip_serializing_if = "Option::is_none")]
    publish_auth_ref: Option<SecretRef>,
}

/// How the worker prepares the working directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkdirMode {
    /// Clone into a new directory.
    FreshClone,
    /// Reuse an existing checkout.
    Reuse,
}

/// What the worker does with its changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishMode {
    /// Nothing is pushed (the default).
    #[default]
    None,
    /// Push a branch.
    Branch,
    /// Push a branch and open a pull request.
    Pr,
}

/// The `publish` object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Publish {
    #[serde(default)]
    mode: PublishMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    base_branch: Option<String>,
}

impl Publish {
    /// The publish mode (default `none`).
    pub fn mode(&self) -> PublishMode {
        self.mode
    }

    /// The branch to base the published branch or pull request on, if given.
    pub fn base_branch(&self) -> Option<&str> {
        self.base_branch.as_deref()
    }
}

/// The `codex` object: options passed to the Codex CLI.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodexOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    effort: Option<String>,
}

impl CodexOptions {
    /// The model name, if given.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// The reasoning effort, if given.
    pub fn effort(&self) -> Option<&str> {
        self.effort.as_deref()
    }
}

impl CodexExecJob {
    /// The payload.
    pub fn payload(&self) -> &CodexExecPayload {
        &self.payload
    }

    /// The repository as written in the payload.
    pub fn repository(&self) -> &str {
        &self.payload.repository
    }

    /// The repository as `owner/repo` ([`super::repository_slug`]), if it has that shape.
    pub fn repository_slug(&self) -> Option<String> {
        super::repository_slug(&self.payload.repository)
    }

    /// The instruction for Codex.
    pub fn instruction(&self) -> &str {
        &self.payload.instruction
    }

    /// The git ref to check out, if given.
    pub fn git_ref(&self) -> Option<&str> {
        self.payload.git_ref.as_deref()
    }

    /// The working-directory mode, if given.
    pub fn workdir_mode(&self) -> Option<WorkdirMode> {
        self.payload.workdir_mode
    }

    /// The publish settings (defaults: mode `none`, no base branch).
    pub fn publish(&self) -> Publish {
        self.payload.publish.clone().unwrap_or_default()
    }

    /// The Codex options (defaults: none set).
    pub fn codex(&self) -> CodexOptions {
        self.payload.codex.clone().unwrap_or_default()
    }

    /// The ref of the credential used to fetch the repository, if any.
    pub fn repo_auth_ref(&self) -> Option<&SecretRef> {
        self.payload.repo_auth_ref.as_ref()
    }

    /// The effective ref of the credential used to publish: `publishAuthRef`,
    /// or `repoAuthRef` when it is absent (the design's default).
    pub fn publish_auth_ref(&self) -> Option<&SecretRef> {
        self.payload
            .publish_auth_ref
            .as_ref()
            .or(self.payload.repo_auth_ref.as_ref())
    }
}

/// Serde for `Option<SecretRef>` as its canonical string.
mod ref_serde {
    use serde::{Deserialize, Deserializer, Serializer, de};

    use crate::secret_ref::SecretRef;

    pub(super) fn serialize<S: Serializer>(
        value: &Option<SecretRef>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(r) => serializer.collect_str(r),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<SecretRef>, D::Error> {
        let text: Option<String> = Option::deserialize(deserializer)?;
        text.map(|t| {
            SecretRef::parse(&t)
                .map_err(|e| de::Error::custom(format!("{}: {}", e.code(), e.message())))
        })
        .transpose()
    }
}
