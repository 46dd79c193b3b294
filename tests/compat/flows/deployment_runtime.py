"""Branching on the deployment a run belongs to (prefect.runtime.deployment)."""

from headwater import flow
from headwater.runtime import deployment


@flow
def load(target: str = "dev") -> dict:
    where = deployment.parameters.get("target", target)
    return {"deployment": deployment.name, "id": deployment.id,
            "version": deployment.version, "flow_run_id": deployment.flow_run_id,
            "target": where}


if __name__ == "__main__":
    print(load())
