"""Where ``Flow.from_source`` fetches a flow's code from, at Prefect's import path
(``from headwater.runner.storage import GitRepository``).

A source is what a Flow's ``spec.source`` says (docs/flow-source.md): a Git repository at a
ref, or a ``.tar.gz`` bundle in object storage. :func:`source_spec` turns what a flow file
passes to ``from_source`` — a :class:`GitRepository`, or a URL string — into that object,
refusing what the Flow would refuse: credentials in a URL (they belong in a Kubernetes
Secret, ``secret_name=``), and a ``credentials=`` value, which names Prefect blocks the
cluster cannot read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = ["GitRepository", "source_spec"]

_BUNDLE_SUFFIXES = (".tar.gz", ".tgz")


@dataclass(frozen=True)
class GitRepository:
    """A Git repository at a branch, tag or commit (Prefect 3's signature, plus
    ``secret_name``: the Kubernetes Secret of its credentials, docs/flow-source.md).

    Without ``branch`` or ``commit_sha`` the repository's default branch (``HEAD``) is
    fetched; the operator pins the commit the first attempt ran, so retries run it too.
    """

    url: str
    credentials: Any = None
    name: str | None = None
    branch: str | None = None
    include_submodules: bool = False
    pull_interval: int | None = 60
    directories: Any = None
    commit_sha: str | None = None
    secret_name: str | None = None

    def spec(self) -> dict[str, Any]:
        """The Flow's ``spec.source`` for this repository."""
        if self.credentials is not None:
            raise ValueError(
                "GitRepository(credentials=...) names Prefect blocks, which the cluster does "
                "not read: put the credentials in a Kubernetes Secret (keys username and "
                "password, or bearerToken, or identity and known_hosts) and pass "
                "secret_name='<that Secret>' (docs/flow-source.md)")
        if self.include_submodules:
            raise ValueError("GitRepository(include_submodules=True): submodules are not "
                             "fetched (docs/flow-source.md); vendor them into the repository")
        if self.branch and self.commit_sha:
            raise ValueError("GitRepository: give branch= or commit_sha=, not both")
        _refuse_userinfo(self.url, "GitRepository(url=...)")
        git: dict[str, Any] = {"url": self.url,
                               "ref": self.commit_sha or self.branch or "HEAD"}
        if self.secret_name:
            git["credentials"] = {"secretRef": {"name": self.secret_name}}
        return {"git": git}


def _refuse_userinfo(url: str, where: str) -> None:
    parts = urlsplit(url)
    if parts.username is not None:
        raise ValueError(f"{where} holds credentials (a user or token before '@' in the "
                         f"URL of {parts.hostname}): keep them out of the URL and pass "
                         "secret_name='<a Kubernetes Secret>' (docs/flow-source.md)")


def source_spec(source: str | GitRepository) -> dict[str, Any]:
    """The Flow's ``spec.source`` for what ``from_source(source=...)`` was given."""
    if isinstance(source, GitRepository):
        return source.spec()
    if not isinstance(source, str) or not source.strip():
        raise TypeError(f"from_source(source=...) takes a Git URL, a .tar.gz bundle URL or "
                        f"a GitRepository, not {type(source).__name__}")
    url = source.strip()
    if url.endswith(_BUNDLE_SUFFIXES):
        _refuse_userinfo(url, "from_source(source=...)")
        return {"bundle": {"url": url}}
    parts = urlsplit(url)
    if url.endswith(".git") or url.startswith("git@") or parts.scheme in (
            "ssh", "git", "file") or parts.netloc in ("github.com", "gitlab.com",
                                                       "bitbucket.org"):
        return GitRepository(url=url).spec()
    raise ValueError(
        f"from_source(source={url!r}): not a Git repository URL (ending in .git, or ssh://, "
        "git@, file://) nor a .tar.gz bundle; a directory in object storage is not a "
        "source a pod can fetch: pack it as one .tar.gz (docs/flow-source.md)")
