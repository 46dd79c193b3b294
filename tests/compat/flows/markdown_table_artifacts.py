"""A run report as markdown, a table and a link artifact."""

from headwater import flow, task
from headwater.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)


@task
def summarize(rows: list[dict]) -> str:
    total = sum(r["amount"] for r in rows)
    create_table_artifact(rows, key="orders-table", description="Orders loaded")
    return create_markdown_artifact(f"# Orders\n\n**{len(rows)}** orders, total {total}",
                                    key="orders-report")


@flow
def orders_report() -> str:
    rows = [{"id": 1, "amount": 30}, {"id": 2, "amount": 12}]
    create_link_artifact("https://bi.example.com/orders", link_text="Dashboard",
                         key="orders-dashboard")
    return summarize(rows)


if __name__ == "__main__":
    orders_report()
