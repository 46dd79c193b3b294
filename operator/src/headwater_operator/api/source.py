"""``Flow.spec.source``: where a flow's code comes from when it is not baked into the image.

A Flow either runs the code in its image (no ``source``), or has an init container fetch
it before each attempt: a Git repository at a ref (``source.git``) or a tarball in object
storage (``source.bundle``). docs/flow-source.md is the user's guide.

What these models must respect:

* **No secret in the object.** A Git URL with a user name and password or token
  (``https://user:token@host/...``) is refused: the token would sit in the Flow, in every
  FlowRun's status and in Events. Credentials come from a Kubernetes Secret named by
  ``credentials.secretRef``; the Secret's keys follow Flux's GitRepository secrets
  (docs/flow-source.md, "Credentials").
* **Nothing the init container would misread.** A ref or path starting with ``-`` would
  be an option to ``git``; a path with ``..`` would leave the checkout. Both are refused
  here (pattern, CEL rule and pydantic alike), not left to the pod.
* Every rule exists twice, as a CEL rule in the CRD (the API server refuses at admission)
  and in pydantic (``headwater validate`` and the operator say the same offline).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, JsonValue, field_validator, model_validator

from headwater_operator.api.common import LocalObjectReference, SpecModel, StatusModel

GIT_URL_PATTERN = r"^((https?|ssh|git|file)://[^ ]+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^ ]+)$"
"""``https://``, ``http://``, ``ssh://``, ``git://`` and ``file://`` URLs, or scp-like
``git@github.com:acme/flows.git``: the forms ``git clone`` takes and Flux documents."""
GIT_REF_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_./+@-]*$"
"""A branch, tag or commit: no leading ``-`` (it would be a git option), no spaces."""
SOURCE_PATH_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$"
"""A relative directory inside the checkout."""
BUNDLE_URL_PATTERN = r"^[a-z][a-z0-9+.-]*://[^ ]+\.(tar\.gz|tgz)$"
"""An fsspec URL of a gzipped tarball, e.g. ``s3://acme-flows/etl/1.4.2.tar.gz``."""
SHA256_PATTERN = r"^[a-f0-9]{64}$"

_CREDENTIALS_IN_URL = "^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]*@"
_SECRET_FIX = ("put them in a Secret (keys `username` and `password`, or `bearerToken`) and "
               "name it in credentials.secretRef")


def _url_credentials_problem(url: str, *, allow_user: bool) -> str | None:
    """Why ``url`` carries credentials it must not, or None."""
    if "://" not in url:
        return None
    parts = urlsplit(url)
    if parts.password is not None:
        return (f"the URL holds a password or token ({parts.scheme}://{parts.username}:***@...); "
                f"{_SECRET_FIX}")
    if parts.username is not None and not allow_user:
        return (f"the URL holds a user name or token before '@' ({parts.scheme}://***@...); "
                f"{_SECRET_FIX}")
    return None


class SecretCredentials(SpecModel):
    """Credentials kept in a Kubernetes Secret in the Flow's namespace."""

    secret_ref: LocalObjectReference = Field(
        description="The Secret, e.g. `{name: flows-repo}`. Its keys, as in Flux's "
        "GitRepository secrets: `username` and `password` (HTTPS; a token goes in "
        "`password`), or `bearerToken` (HTTPS), or `identity` (an SSH private key; Argo "
        "CD's `sshPrivateKey` is accepted too) with `known_hosts`. Mounted only into the "
        "init container that fetches the code."
    )


class GitSource(SpecModel):
    """A Git repository at a pinned ref."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"!self.url.matches('{_CREDENTIALS_IN_URL}') || "
                    "self.url.startsWith('ssh://') && "
                    f"!self.url.matches('^ssh://[^/@]*:[^/]*@')",
                    "message": "must not hold credentials (https://user:token@host/...): "
                    + _SECRET_FIX,
                    "fieldPath": ".url",
                },
                {
                    "rule": "!has(self.path) || !self.path.contains('..')",
                    "message": "must stay inside the repository: remove '..', e.g. "
                    "'flows/etl'",
                    "fieldPath": ".path",
                },
            ]
        }
    )

    url: str = Field(
        min_length=1,
        max_length=2048,
        pattern=GIT_URL_PATTERN,
        description="Repository URL, e.g. `https://github.com/acme/flows.git`, "
        "`ssh://git@github.com/acme/flows.git` or `git@github.com:acme/flows.git`. Never "
        "with credentials in it: use `credentials.secretRef`.",
    )
    ref: str = Field(
        min_length=1,
        max_length=255,
        pattern=GIT_REF_PATTERN,
        description="Branch, tag or commit to run, e.g. `v1.4.2`, `main` or a 40-character "
        "commit. A branch is resolved to its commit when a run's first attempt starts; "
        "every retry of that run uses the same commit (status.source.commit).",
    )
    path: str | None = Field(
        default=None,
        max_length=1024,
        pattern=SOURCE_PATH_PATTERN,
        description="Directory inside the repository that becomes the working directory "
        "and the first `PYTHONPATH` entry; `entrypoint` is relative to it. Default: the "
        "repository root. E.g. `flows/etl`.",
    )
    credentials: SecretCredentials | None = Field(
        default=None,
        description="For a private repository: the Secret with its credentials.",
    )

    @field_validator("url")
    @classmethod
    def _no_credentials(cls, url: str) -> str:
        problem = _url_credentials_problem(url, allow_user=url.startswith("ssh://"))
        if problem is not None:
            raise ValueError(problem)
        return url

    @field_validator("path")
    @classmethod
    def _inside(cls, path: str | None) -> str | None:
        if path is not None and ".." in path:
            raise ValueError(f"{path!r} must stay inside the repository: remove '..', "
                             "e.g. 'flows/etl'")
        return path


class BundleSource(SpecModel):
    """A gzipped tarball of the flow's code in object storage (or any fsspec URL)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"!self.url.matches('{_CREDENTIALS_IN_URL}')",
                    "message": "must not hold credentials: give the pod storage credentials "
                    "through Deployment.spec.runTemplate.env/envFrom or its service account",
                    "fieldPath": ".url",
                },
            ]
        }
    )

    url: str = Field(
        min_length=1,
        max_length=2048,
        pattern=BUNDLE_URL_PATTERN,
        description="URL of a `.tar.gz` (or `.tgz`), e.g. `s3://acme-flows/etl/1.4.2.tar.gz`. "
        "Read with fsspec and the pod's own storage credentials (the flow container's "
        "env, envFrom and service account), as result storage is.",
    )
    sha256: str | None = Field(
        default=None,
        pattern=SHA256_PATTERN,
        description="Expected SHA-256 of the tarball (64 lower-case hex digits). The run "
        "fails before the flow starts when the bundle differs. Unset: the digest found by "
        "the first attempt is recorded and every retry must match it.",
    )

    @field_validator("url")
    @classmethod
    def _no_credentials(cls, url: str) -> str:
        problem = _url_credentials_problem(url, allow_user=False)
        if problem is not None:
            raise ValueError(problem.replace(
                _SECRET_FIX, "give the pod storage credentials through Deployment.spec."
                "runTemplate.env/envFrom or its service account"))
        return url


SOURCE_RULES: list[JsonValue] = [
    {
        "rule": "has(self.git) != has(self.bundle)",
        "message": "set exactly one of source.git or source.bundle",
    }
]


class FlowSource(SpecModel):
    """Where the flow's code comes from. Exactly one of `git` and `bundle` is set."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": SOURCE_RULES})

    git: GitSource | None = Field(
        default=None,
        description="Clone this repository at `ref` before each attempt, e.g. "
        "`{url: https://github.com/acme/flows.git, ref: v1.4.2}`.",
    )
    bundle: BundleSource | None = Field(
        default=None,
        description="Download and unpack this tarball before each attempt, e.g. "
        "`{url: s3://acme-flows/etl/1.4.2.tar.gz}`.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> FlowSource:
        if (self.git is None) == (self.bundle is None):
            found = "both" if self.git is not None else "neither"
            raise ValueError(f"set exactly one of source.git or source.bundle (found {found})")
        return self


_HEX40 = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


class SourceStatus(StatusModel):
    """The exact code a run ran: the commit its ref resolved to, or the bundle's digest."""

    url: str = Field(description="The repository or bundle URL the code came from.")
    ref: str | None = Field(default=None, description="The Git ref as the Flow named it.")
    commit: str | None = Field(
        default=None,
        description="The commit `ref` resolved to when the first attempt started; every "
        "retry checks out this commit.",
    )
    path: str | None = Field(default=None, description="The directory inside the checkout.")
    digest: str | None = Field(
        default=None, description="`sha256:<hex>` of the bundle the first attempt unpacked."
    )

    @property
    def pinned_ref(self) -> str | None:
        """What a later attempt checks out: the resolved commit, when it looks like one."""
        return self.commit if self.commit and _HEX40.match(self.commit) else None
