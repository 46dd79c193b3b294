"""A Prefect 3 file that deploys a flow whose code lives in a Git repository: only the
imports differ from Prefect's. REPO_URL and REF come from the environment so the test
can point them at a local bare repository."""

import os

from headwater import flow
from headwater.runner.storage import GitRepository

REPO_URL = os.environ["REPO_URL"]

if __name__ == "__main__":
    flow.from_source(
        source=GitRepository(url=REPO_URL, branch=os.environ.get("REF", "main")),
        entrypoint="etl/greet.py:greet",
    ).deploy(
        name="greet-from-git",
        image="ghcr.io/acme/headwater-runtime:0.1.0",
        cron="0 6 * * *",
        parameters={"who": "ops"},
        output_dir=os.environ["OUTPUT_DIR"],
    )
