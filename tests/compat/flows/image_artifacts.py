"""Publishing a chart as an image artifact, next to a markdown summary."""

from headwater import flow
from headwater.artifacts import create_image_artifact, create_markdown_artifact


@flow
def weekly_chart(url: str = "https://example.com/charts/orders-week-49.png") -> str:
    create_image_artifact(image_url=url, key="orders-chart", description="Orders per day")
    return create_markdown_artifact(f"![orders]({url})", key="orders-summary")


if __name__ == "__main__":
    weekly_chart()
