"""An async flow using blocks and variables the Prefect 3 way: ``await`` on ``load``,
``save``, ``Variable.get``/``set`` called from ``async def``."""

from __future__ import annotations

from headwater import flow, get_run_logger, task
from headwater.blocks.system import JSON, Secret, String
from headwater.variables import Variable


@task
async def remember_run(mode: str) -> str:
    await String(value=mode).save("last-mode", overwrite=True)
    return (await String.load("last-mode")).value


@flow(name="async-settings")
async def async_settings() -> dict[str, object]:
    token = (await Secret.load("api-token")).get()
    settings = (await JSON.load("pipeline-settings")).value
    await Variable.set("runs_seen", (await Variable.get("runs_seen", default=0)) + 1,
                       overwrite=True)
    mode = await remember_run(settings["mode"])
    get_run_logger().info("calling the API with token %s in mode %s", token, mode)
    return {"mode": mode, "runs_seen": await Variable.get("runs_seen")}


if __name__ == "__main__":
    import asyncio

    asyncio.run(async_settings())
