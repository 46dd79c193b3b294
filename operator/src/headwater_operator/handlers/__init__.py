"""Every kopf handler of the operator, registered on kopf's default registry on import.

``headwater_operator.runner`` imports this package before starting kopf. Each resource
has one obvious module here (thin ``@kopf.on`` wrappers that delegate to pure functions
elsewhere); add one explicit import line per module below, so a missing module fails
loudly instead of silently registering nothing:

    from headwater_operator.handlers import flowruns  # noqa: F401
"""
from headwater_operator.handlers import (
    deployments,  # noqa: F401
    flowruns,  # noqa: F401
    flows,  # noqa: F401
    pods,  # noqa: F401
    schedules,  # noqa: F401
)
