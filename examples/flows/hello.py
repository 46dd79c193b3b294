"""Quickstart: the smallest Headwater flow.

Run it locally with no server::

    python examples/flows/hello.py            # prints logs and a run summary
    headwater execute --entrypoint examples/flows/hello.py:hello --param name=Ada
"""

from __future__ import annotations

from headwater import flow, task


@task
def greet(name: str) -> str:
    """Build the greeting."""
    return f"Hello, {name}!"


@flow(log_prints=True)
def hello(name: str = "world") -> str:
    """Say hello to ``name``."""
    message = greet(name)
    print(message)
    return message


if __name__ == "__main__":
    hello()
