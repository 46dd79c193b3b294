"""Flow parameters typed with pydantic models, coerced and validated."""

from datetime import date

from headwater import flow
from pydantic import BaseModel, Field


class Window(BaseModel):
    start: date
    end: date


class Config(BaseModel):
    table: str
    batch_size: int = Field(default=100, gt=0)
    window: Window


@flow
def ingest(config: Config, dry_run: bool = False) -> dict:
    days = (config.window.end - config.window.start).days
    return {"table": config.table, "days": days, "batch": config.batch_size,
            "dry_run": dry_run}


if __name__ == "__main__":
    print(ingest({"table": "orders", "window": {"start": "2026-12-01", "end": "2026-12-07"}}))
