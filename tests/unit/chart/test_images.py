"""The images are built right, checked without Docker (which cannot run here or in CI).

Three layers: hadolint (the real linter, from PyPI) via scripts/lint-dockerfiles.sh; our
own rules for what hadolint does not enforce (patch-pinned base, the uid the chart runs
as, entrypoints the operator and chart rely on); and a pip dry-run that resolves exactly
the requirement set the Dockerfiles build, against the index, so an unsatisfiable
dependency fails here instead of in an image build.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from chartkit import REPO_ROOT

OPERATOR = REPO_ROOT / "Dockerfile"
RUNTIME = REPO_ROOT / "images" / "runtime" / "Dockerfile"
PINNED_BASE = re.compile(r"^python:3\.11\.\d+-slim-[a-z]+(@sha256:[a-f0-9]{64})?$")
NON_ROOT_UID = "65532"


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction with its line continuations joined."""

    keyword: str
    args: str


def _instructions(path: Path) -> list[Instruction]:
    lines: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if not stripped or (stripped.startswith("#") and not pending):
            continue
        if stripped.startswith("#"):
            continue  # comment lines inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    out = []
    for line in lines:
        keyword, _, args = line.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip()))
    return out


def _stages(path: Path) -> list[list[Instruction]]:
    stages: list[list[Instruction]] = []
    for ins in _instructions(path):
        if ins.keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(ins)
    return stages


def _final(path: Path, keyword: str) -> list[Instruction]:
    return [i for i in _stages(path)[-1] if i.keyword == keyword]


def _env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in _final(path, "ENV"):
        for pair in shlex.split(ins.args):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def _arg_defaults(path: Path) -> dict[str, str]:
    """``ARG NAME=default`` of a Dockerfile: what a plain ``docker build`` uses."""
    defaults: dict[str, str] = {}
    for ins in _instructions(path):
        if ins.keyword == "ARG" and "=" in ins.args:
            name, _, value = ins.args.partition("=")
            defaults[name.strip()] = value.strip()
    return defaults


def _pip_wheel_targets(path: Path) -> list[str]:
    """The requirement specs a Dockerfile's builder turns into wheels, with the build
    arguments' defaults substituted (``${NAME}``)."""
    targets: list[str] = []
    args = _arg_defaults(path)
    for ins in _instructions(path):
        if ins.keyword == "RUN" and "pip wheel" in ins.args:
            words = shlex.split(ins.args.split("pip wheel", 1)[1])
            skip_next = False
            for word in words:
                if skip_next:
                    skip_next = False
                elif word in ("--wheel-dir", "-w"):
                    skip_next = True
                elif not word.startswith("-"):
                    targets.append(re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], word))
    return targets


@pytest.mark.parametrize("dockerfile", [OPERATOR, RUNTIME], ids=["operator", "runtime"])
def test_base_images_are_pinned_patch_releases(dockerfile: Path) -> None:
    stage_names: set[str] = set()
    for ins in _instructions(dockerfile):
        if ins.keyword != "FROM":
            continue
        image, *rest = ins.args.split()
        assert ":latest" not in image
        assert image in stage_names or PINNED_BASE.match(image), (
            f"{dockerfile.name}: FROM {image} is not pinned to a python 3.11 patch release"
        )
        if len(rest) == 2 and rest[0].upper() == "AS":
            stage_names.add(rest[1])


@pytest.mark.parametrize("dockerfile", [OPERATOR, RUNTIME], ids=["operator", "runtime"])
def test_final_stage_runs_as_the_non_root_uid_the_chart_expects(dockerfile: Path) -> None:
    users = _final(dockerfile, "USER")
    assert users, f"{dockerfile.name}: the final stage never sets USER"
    assert users[-1].args.split(":")[0] == NON_ROOT_UID


@pytest.mark.parametrize("dockerfile", [OPERATOR, RUNTIME], ids=["operator", "runtime"])
def test_no_remote_add_and_read_only_root_friendly(dockerfile: Path) -> None:
    for ins in _instructions(dockerfile):
        assert not (ins.keyword == "ADD" and re.search(r"https?://", ins.args)), ins
    env = _env(dockerfile)
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PIP_NO_CACHE_DIR"] == "1"


def test_operator_image_entrypoint_is_the_operator_module() -> None:
    (entrypoint,) = _final(OPERATOR, "ENTRYPOINT")
    assert json.loads(entrypoint.args) == ["python", "-m", "headwater_operator"]
    assert _env(OPERATOR)["HOME"] == "/tmp"  # the only writable path in the chart's pod


def test_runtime_image_runs_headwater_execute_from_opt_flows() -> None:
    assert _final(RUNTIME, "ENTRYPOINT") == []  # Flow.spec.command decides, not the image
    (cmd,) = _final(RUNTIME, "CMD")
    assert json.loads(cmd.args) == ["headwater", "execute"]
    assert _final(RUNTIME, "WORKDIR")[-1].args == "/opt/flows"
    env = _env(RUNTIME)
    assert env["PYTHONPATH"] == "/opt/flows"
    assert env["HEADWATER_HOME"].startswith("/tmp/")


def test_runtime_image_has_git_and_ssh_for_fetch_source() -> None:
    # A Flow with spec.source.git runs `headwater fetch-source` in this image; it clones
    # with the git binary (ssh:// URLs need ssh).
    installs = [ins.args for ins in _final(RUNTIME, "RUN") if "apt-get install" in ins.args]
    assert installs, "the runtime image installs no packages"
    words = installs[0].split()
    assert {"git", "openssh-client"} <= set(words)
    assert "--no-install-recommends" in words


def test_images_build_from_the_repository_packages() -> None:
    # The operator image carries the S3 driver of the run store it prunes records in
    # (docs/install.md, "Images"); other drivers are a build argument away.
    assert _pip_wheel_targets(OPERATOR) == ["./sdk", "./operator[s3]"]
    assert _pip_wheel_targets(RUNTIME) == ["./sdk[fsspec]"]


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    patterns = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # An allow-list: everything is ignored except what the Dockerfiles copy.
    assert patterns[0] == "*"
    assert {p for p in patterns if p.startswith("!")} == {"!sdk/", "!operator/"}


def test_hadolint_passes() -> None:
    proc = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "lint-dockerfiles.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"hadolint:\n{proc.stdout}\n{proc.stderr}"
    assert "clean" in proc.stdout


@pytest.mark.slow
def test_image_requirements_resolve(tmp_path: Path) -> None:
    # One resolution of the union of both images' requirement sets: if the union is
    # satisfiable, so is each image's subset, and one index round-trip is half the time.
    targets = _pip_wheel_targets(OPERATOR) + _pip_wheel_targets(RUNTIME)
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            str(report),
            *targets,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"pip could not resolve {targets}:\n{proc.stderr}"
    names = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert {"headwater", "headwater-operator", "kopf", "kubernetes", "fsspec", "s3fs"} <= names
    # The emulator and `headwater dev` (headwater-dev, with its CEL checker) stay out of
    # both images. (google-re2 is in: the operator's cel-python needs it too.)
    assert not names & {"headwater-dev", "cel-expr-python"}
