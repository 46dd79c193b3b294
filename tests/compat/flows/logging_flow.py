"""Logging with get_run_logger, and print() captured with log_prints=True."""

from headwater import flow, get_run_logger, task


@task
def transform(n: int) -> int:
    logger = get_run_logger()
    logger.info("transforming %d rows", n)
    return n * 2


@flow(log_prints=True)
def etl(n: int = 5) -> int:
    logger = get_run_logger()
    logger.warning("source is slow today")
    result = transform(n)
    print(f"loaded {result} rows")
    return result


if __name__ == "__main__":
    etl()
