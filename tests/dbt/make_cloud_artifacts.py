"""Make the dbt Cloud tests' artifacts: real ``dbt build`` runs of ``cloud_project/``.

Run it again (``python tests/dbt/make_cloud_artifacts.py``, in .venv-dbt) when the pinned dbt-core
or dbt-duckdb changes. It builds the project twice with dbt's programmatic runner, in a
temporary copy, against DuckDB: once as it is (``data/cloud/success/``: every node
passes) and once with ``--vars '{break: true}'`` (``data/cloud/error/``: a model errors,
its child is skipped, a test fails). It keeps ``manifest.json`` and ``run_results.json``
as dbt wrote them except that

* the manifest's ``macros`` (dbt's and the adapter's own, ~500 kB no reporter reads) are
  emptied and the nodes' ``depends_on.macros`` kept, so the file stays small;
* the temporary directory in paths is replaced by ``/usr/src/shop``, so that the files
  do not change with every run.

Those are the files a dbt Cloud run serves from Retrieve Run Artifact.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
PROJECT = HERE / "cloud_project"
OUT = HERE / "data" / "cloud"
STABLE_ROOT = "/usr/src/shop"


def _build(workdir: Path, variables: str | None) -> tuple[dict[str, object], dict[str, object]]:
    from dbt.cli.main import dbtRunner

    args = ["build", "--project-dir", str(workdir), "--profiles-dir", str(workdir)]
    if variables:
        args += ["--vars", variables]
    dbtRunner().invoke(args)
    target = workdir / "target"

    def load(name: str) -> dict[str, object]:
        text = (target / name).read_text().replace(str(workdir), STABLE_ROOT)
        value: dict[str, object] = json.loads(text)
        return value

    manifest = load("manifest.json")
    manifest["macros"] = {}
    return manifest, load("run_results.json")


def main() -> None:
    for name, variables in (("success", None), ("error", "{break: true}")):
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp) / "shop"
            shutil.copytree(PROJECT, workdir)
            with contextlib.chdir(workdir):  # the DuckDB file is relative to it
                manifest, run_results = _build(workdir, variables)
        out = OUT / name
        out.mkdir(parents=True, exist_ok=True)
        (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        (out / "run_results.json").write_text(
            json.dumps(run_results, indent=1, sort_keys=True) + "\n")
        statuses = {r["unique_id"]: r["status"] for r in run_results["results"]}  # type: ignore[index,union-attr]
        print(name, json.dumps(statuses, indent=1), file=sys.stderr)


if __name__ == "__main__":
    main()
