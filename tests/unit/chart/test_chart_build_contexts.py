"""Every image build sends what its Dockerfile copies (issue #10 item 2).

Docker cannot run here or in CI, so the build contexts are checked offline: for each
``docker build`` in scripts/e2e-kind.sh, every ``COPY``/``ADD`` source (and every
``RUN --mount=type=bind`` without ``from``) must be in the context after the
``.dockerignore`` rules, including every git-tracked file below it. The rules are
Docker's, applied by docker-py as it builds a context (docker/utils/build.py
``exclude_paths``, a port of moby's pattern matching: Go ``filepath.Match`` patterns plus
``**``, paths cleaned and relative to the context root, ``!`` exceptions, the last
matching line wins, and an excluded directory is not entered unless an exception names
something below it). Which ignore file applies is
BuildKit's rule (docs.docker.com, "Build context", .dockerignore files): one named
``<Dockerfile>.dockerignore`` next to the Dockerfile wins, else ``.dockerignore`` at the
context root. The examples image had been built from the repository root, whose
allow-list keeps examples/ out, so its ``COPY examples/flows/`` failed.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from chartkit import REPO_ROOT
from docker.utils.build import exclude_paths

E2E_SCRIPT = REPO_ROOT / "scripts" / "e2e-kind.sh"


@dataclass(frozen=True)
class Build:
    """One ``docker build``: its Dockerfile text and where it came from, and its context."""

    dockerfile: str
    dockerfile_path: Path | None
    context: Path
    where: str


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        lines.append(pending + raw)
        pending = ""
    return lines


def script_builds(script: Path) -> list[Build]:
    """The ``docker build`` commands of a shell script (``-f -`` reads a here-document)."""
    lines = _logical_lines(script.read_text(encoding="utf-8"))
    builds = []
    for index, line in enumerate(lines):
        words = shlex.split(line, comments=True)
        if words[:2] != ["docker", "build"]:
            continue
        heredoc = None
        if "<<" in words[-1] or (len(words) > 1 and words[-2] == "<<"):
            marker = words[-1].lstrip("<")
            words = words[:-2] if words[-2] == "<<" else words[:-1]
            body = []
            for following in lines[index + 1:]:
                if following.strip() == marker:
                    break
                body.append(following)
            heredoc = "\n".join(body)
        dockerfile, context = _dockerfile_and_context(words[2:])
        context_dir = (REPO_ROOT / context).resolve()
        if dockerfile == "-":
            assert heredoc is not None, f"{script.name}: `-f -` without a here-document"
            builds.append(Build(heredoc, None, context_dir, f"{script.name}: {line.strip()}"))
        else:
            path = (REPO_ROOT / (dockerfile or Path(context) / "Dockerfile")).resolve()
            builds.append(Build(path.read_text(encoding="utf-8"), path, context_dir,
                                f"{script.name}: {line.strip()}"))
    return builds


def _dockerfile_and_context(args: list[str]) -> tuple[str | None, str]:
    takes_value = {"-t", "--tag", "-f", "--file", "--build-arg", "--target", "--platform",
                   "--label", "--secret", "--ssh", "--cache-from", "--cache-to", "-o",
                   "--output", "--progress", "--network", "--build-context"}
    dockerfile = None
    positional = []
    words = iter(args)
    for word in words:
        if word in ("-f", "--file"):
            dockerfile = next(words)
        elif word.startswith("--file="):
            dockerfile = word.split("=", 1)[1]
        elif word in takes_value:
            next(words)
        elif not word.startswith("-"):
            positional.append(word)
    assert len(positional) == 1, f"expected one build context in docker build {args}"
    return dockerfile, positional[0]


def context_sources(dockerfile: str) -> list[str]:
    """The context paths a Dockerfile reads: COPY/ADD sources not taken from a stage or
    image, and bind mounts without ``from``."""
    sources: list[str] = []
    for line in _logical_lines(dockerfile):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, rest = stripped.partition(" ")
        keyword = keyword.upper()
        if keyword in ("COPY", "ADD"):
            args = json.loads(rest) if rest.lstrip().startswith("[") else shlex.split(rest)
            flags = [a for a in args if a.startswith("--")]
            if any(flag.startswith("--from=") for flag in flags):
                continue
            sources += [a for a in args if not a.startswith("--")][:-1]
        elif keyword == "RUN":
            for word in shlex.split(rest):
                if word.startswith("--mount="):
                    options = dict(part.partition("=")[::2]
                                   for part in word[len("--mount="):].split(","))
                    if options.get("type") == "bind" and "from" not in options:
                        sources.append(options.get("source", "."))
    return sources


def _ignore_patterns(build: Build) -> list[str]:
    candidates = []
    if build.dockerfile_path is not None:
        candidates.append(build.dockerfile_path.with_name(
            build.dockerfile_path.name + ".dockerignore"))
    candidates.append(build.context / ".dockerignore")
    for candidate in candidates:
        if candidate.is_file():
            return [line.strip() for line in candidate.read_text().splitlines()
                    if line.strip() and not line.strip().startswith("#")]
    return []


def _tracked_files(directory: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files", "--", str(directory)], cwd=REPO_ROOT,
                         capture_output=True, text=True, check=True).stdout
    return [str((REPO_ROOT / line).relative_to(directory)) for line in out.splitlines()]


def sent_files(context: Path, patterns: list[str], dockerfile: Path | None) -> set[str]:
    """The paths (relative to ``context``) a build sends, as docker-py computes them."""
    name = "Dockerfile"
    if dockerfile is not None and dockerfile.is_relative_to(context):
        name = str(dockerfile.relative_to(context))
    return set(exclude_paths(str(context), list(patterns), dockerfile=name))


def missing_sources(build: Build) -> list[str]:
    """What the build's Dockerfile reads that its context does not hold, explained."""
    sent = sent_files(build.context, _ignore_patterns(build), build.dockerfile_path)
    tracked = _tracked_files(build.context)
    problems = []
    for source in context_sources(build.dockerfile):
        assert "$" not in source, f"{build.where}: cannot check the variable source {source}"
        prefix = source.strip("/").removeprefix("./")
        below = [f for f in tracked if prefix in ("", ".") or f == prefix
                 or f.startswith(prefix + "/")]
        if not below:
            problems.append(f"{source}: no such path in the context {build.context}")
            continue
        excluded = [f for f in below if f not in sent]
        if excluded:
            problems.append(f"{source}: {len(excluded)} of its {len(below)} files are "
                            f"excluded by the .dockerignore rules (e.g. {excluded[0]})")
    return problems


BUILDS = script_builds(E2E_SCRIPT)


@pytest.mark.parametrize("build", BUILDS, ids=[b.where.split(": ", 1)[1][:60] for b in BUILDS])
def test_every_copied_path_is_in_its_build_context(build: Build) -> None:
    assert context_sources(build.dockerfile), f"{build.where}: copies nothing?"
    assert missing_sources(build) == [], build.where


def test_every_dockerfile_of_the_repository_is_built_and_checked() -> None:
    out = subprocess.run(["git", "ls-files", "*Dockerfile"], cwd=REPO_ROOT,
                         capture_output=True, text=True, check=True).stdout
    dockerfiles = {(REPO_ROOT / line).resolve() for line in out.splitlines()}
    assert dockerfiles, "git ls-files found no Dockerfile"
    assert dockerfiles <= {b.dockerfile_path for b in BUILDS}, (
        "a Dockerfile that scripts/e2e-kind.sh does not build has no checked context")


def test_the_operator_image_context_never_holds_the_examples() -> None:
    (operator,) = [b for b in BUILDS if b.dockerfile_path == REPO_ROOT / "Dockerfile"]
    sent = sent_files(operator.context, _ignore_patterns(operator), operator.dockerfile_path)
    assert [f for f in _tracked_files(REPO_ROOT) if f.startswith("examples/")]
    assert not [f for f in sent if f.startswith("examples")]


def test_the_context_walk_follows_dockers_rules(tmp_path: Path) -> None:
    # The behaviours the checks rely on, so that a change of library cannot go unnoticed.
    for path in ("README.md", "README-secret.md", "examples/flows/hello.py",
                 "sdk/pyproject.toml", "sdk/src/__pycache__/x.pyc", "sdk/src/a.py"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("x")
    sent = sent_files(tmp_path, ["*", "!sdk/", "**/__pycache__/", "!README*.md",
                                 "README-secret.md"], None)
    files = {f for f in sent if (tmp_path / f).is_file()}
    # "*" excludes the top level and all below it; "!sdk/" re-includes a tree; "**"
    # matches at any depth; the last matching line wins.
    assert files == {"README.md", "sdk/pyproject.toml", "sdk/src/a.py"}
    # "*" is one level only: a nested file does not match "*/temp*" at the top.
    (tmp_path / "temp.txt").write_text("x")
    assert "temp.txt" in sent_files(tmp_path, ["*/temp*"], None)


def test_the_old_heredoc_build_is_caught(tmp_path: Path) -> None:
    # The build this change replaced: root context, examples/ not in the allow-list.
    script = tmp_path / "old.sh"
    script.write_text('docker build -t x -f - . <<DOCKERFILE\nFROM runtime\n'
                      'COPY --chown=65532:65532 examples/flows/ /opt/flows/examples/flows/\n'
                      'DOCKERFILE\n')
    (build,) = script_builds(script)
    (problem,) = missing_sources(build)
    assert problem.startswith("examples/flows/: ")
    assert "excluded" in problem
