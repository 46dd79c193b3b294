"""``flow.from_source(...)`` as Prefect users write it: the flow is loaded from a Git
repository (a local bare one stands in for the remote), runs here from the fetched code,
and ``.deploy(...)`` writes a Flow whose ``spec.source`` makes the pod fetch that code
(tests/api/test_flow_source.py runs such a Flow in the sandbox). Bad sources name the fix.
"""

from __future__ import annotations

import re
import runpy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from headwater import Flow, flow
from headwater.runner.storage import GitRepository
from headwater_operator.api.validation import validate_manifest

FLOWS = Path(__file__).parent / "flows_source"
GREET = '''from headwater import flow, task


@task
def shout(text: str) -> str:
    return text.upper()


@flow(log_prints=True)
def greet(who: str = "world") -> str:
    return shout(f"hello {who} from {VERSION}")


VERSION = "{version}"
'''


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=Test", "-c", "user.email=t@example.com",
                           "-c", "init.defaultBranch=main", *args], cwd=cwd, check=True,
                          capture_output=True, text=True)
    return done.stdout.strip()


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare repository with etl/greet.py at two commits: v1 (tagged) and main's v2."""
    bare, work = tmp_path / "flows.git", tmp_path / "work"
    bare.mkdir()
    git(bare, "init", "--bare", "--quiet")
    git(tmp_path, "clone", "--quiet", str(bare), str(work))
    (work / "etl").mkdir()
    for version in ("v1", "v2"):
        (work / "etl" / "greet.py").write_text(GREET.replace("{version}", version))
        git(work, "add", "-A")
        git(work, "commit", "--quiet", "-m", version)
        if version == "v1":
            git(work, "tag", "v1")
    git(work, "push", "--quiet", "--tags", "origin", "HEAD:main")
    return bare


def test_from_source_loads_and_runs_the_fetched_code_at_the_ref(remote: Path) -> None:
    at_tag = flow.from_source(GitRepository(url=remote.as_uri(), branch="v1"),
                              "etl/greet.py:greet")
    default = Flow.from_source(remote.as_uri(), "etl/greet.py:greet")
    assert isinstance(at_tag, Flow)
    assert at_tag(who="ops") == "HELLO OPS FROM V1"
    assert default() == "HELLO WORLD FROM V2"
    assert default.source == ({"git": {"url": remote.as_uri(), "ref": "HEAD"}},
                              "etl/greet.py:greet")


def test_a_prefect_file_deploys_a_flow_from_git_as_a_flow_with_spec_source(
        remote: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "manifests"
    monkeypatch.setenv("REPO_URL", remote.as_uri())
    monkeypatch.setenv("REF", "v1")
    monkeypatch.setenv("OUTPUT_DIR", str(out))
    runpy.run_path(str(FLOWS / "deploy_from_git.py"), run_name="__main__")
    objects: dict[str, Any] = {path.name: yaml.safe_load(path.read_text(encoding="utf-8"))
                               for path in sorted(out.iterdir())}
    for manifest in objects.values():
        validate_manifest(manifest)  # what the API server and the operator would refuse
    flows = [m for m in objects.values() if m["kind"] == "Flow"]
    assert len(flows) == 1
    spec = flows[0]["spec"]
    assert spec["source"] == {"git": {"url": remote.as_uri(), "ref": "v1"}}
    assert spec["entrypoint"] == "etl/greet.py:greet"
    assert spec["parametersSchema"]["properties"]["who"]["default"] == "world"
    assert sorted(m["kind"] for m in objects.values()) == ["Deployment", "Flow", "Schedule"]


@pytest.mark.parametrize(("source", "entrypoint", "message"), [
    ("https://user:tok3n@github.com/acme/flows.git", "etl/greet.py:greet",
     "keep them out of the URL and pass secret_name="),
    (GitRepository(url="https://github.com/acme/flows.git", credentials={"token": "x"}),
     "etl/greet.py:greet", "put the credentials in a Kubernetes Secret"),
    ("s3://bucket/flows/", "etl/greet.py:greet", "pack it as one .tar.gz"),
    ("https://github.com/acme/flows.git", "../outside.py:greet",
     "path inside the source"),
])
def test_bad_sources_name_the_fix_and_fetch_nothing(source: Any, entrypoint: str,
                                                    message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        Flow.from_source(source, entrypoint)
    assert "tok3n" not in str(caught.value)


def test_with_a_secret_the_flow_names_it_and_never_a_value() -> None:
    spec = GitRepository(url="https://github.com/acme/flows.git", branch="main",
                         secret_name="flows-repo").spec()
    assert spec == {"git": {"url": "https://github.com/acme/flows.git", "ref": "main",
                            "credentials": {"secretRef": {"name": "flows-repo"}}}}
