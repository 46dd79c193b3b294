"""A parent flow composed of subflows, one per region."""

from headwater import flow, task


@task
def fetch_sales(region: str) -> list[int]:
    return {"eu": [3, 4], "us": [5, 6, 7]}[region]


@flow(flow_run_name="sales-{region}")
def region_total(region: str) -> int:
    return sum(fetch_sales(region))


@flow
def global_sales(regions: list[str]) -> dict:
    return {region: region_total(region) for region in regions}


if __name__ == "__main__":
    print(global_sales(["eu", "us"]))
