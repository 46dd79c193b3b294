"""profiles.yml written at run time from a credentials Block: private, removed, never
logged, and read by real dbt-core."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
import yaml
from headwater.blocks.core import Block
from headwater_dbt.profiles import temporary_profiles_dir, write_profiles_yml
from pydantic import SecretStr

PASSWORD = "pw-9f2#k: {not jinja} ' \" end"
PROJECT = Path(__file__).parent / "cloud_project"


class PostgresTarget(Block):
    """What docs/dbt-profiles.md's example block holds."""

    host: str
    user: str
    password: SecretStr
    dbname: str
    schema_name: str = "analytics"

    def target(self) -> dict[str, object]:
        return {"type": "postgres", "host": self.host, "port": 5432, "user": self.user,
                "password": self.password, "dbname": self.dbname,
                "schema": self.schema_name, "threads": 4}


def test_the_file_is_private_holds_the_secret_and_is_removed(
        caplog: pytest.LogCaptureFixture) -> None:
    creds = PostgresTarget(host="db.internal", user="dbt", password=PASSWORD, dbname="shop")
    creds.save("pg-dbt")
    loaded = PostgresTarget.load("pg-dbt")

    with caplog.at_level(logging.DEBUG), \
            temporary_profiles_dir("shop", "prod", loaded.target()) as directory:
        path = directory / "profiles.yml"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        profile = yaml.safe_load(path.read_text())
    assert profile == {"shop": {"target": "prod", "outputs": {"prod": {
        "type": "postgres", "host": "db.internal", "port": 5432, "user": "dbt",
        "password": PASSWORD, "dbname": "shop", "schema": "analytics", "threads": 4}}}}
    assert not directory.exists()
    assert PASSWORD not in caplog.text


def test_the_directory_is_removed_when_the_block_fails() -> None:
    with pytest.raises(RuntimeError, match="dbt failed"), \
            temporary_profiles_dir("shop", "dev", {"type": "duckdb"}) as directory:
        raise RuntimeError("dbt failed")
    assert not directory.exists()


def test_a_secret_dbt_would_render_is_refused_without_showing_it(tmp_path: Path) -> None:
    secret = "abc{{ 7*7 }}def"
    with pytest.raises(ValueError,
                       match=r"secret value of shop\.prod\.password contains Jinja") as info:
        write_profiles_yml(tmp_path, "shop", "prod",
                           {"type": "postgres", "password": SecretStr(secret)})
    assert secret not in str(info.value)
    assert not (tmp_path / "profiles.yml").exists()


def test_env_var_references_and_bad_values(tmp_path: Path) -> None:
    write_profiles_yml(tmp_path, "shop", "prod", {
        "type": "snowflake", "password": "{{ env_var('DBT_ENV_SECRET_SNOWFLAKE_PASSWORD') }}"})
    written = yaml.safe_load((tmp_path / "profiles.yml").read_text())
    assert written["shop"]["outputs"]["prod"]["password"] == (
        "{{ env_var('DBT_ENV_SECRET_SNOWFLAKE_PASSWORD') }}")
    with pytest.raises(ValueError, match="has no 'type'"):
        write_profiles_yml(tmp_path, "shop", "dev", {"path": "x.duckdb"})
    with pytest.raises(TypeError, match=r"shop\.dev\.path is a PosixPath"):
        write_profiles_yml(tmp_path / "x", "shop", "dev", {"type": "duckdb", "path": tmp_path})


def test_real_dbt_reads_the_rendered_profile(tmp_path: Path) -> None:
    from dbt.cli.main import dbtRunner

    # A path YAML would need quoted (": ", " #") shows the JSON-as-YAML file is read as is.
    database = tmp_path / "shop #1: ci.duckdb"
    target = {"type": "duckdb", "path": SecretStr(str(database)), "threads": 1}
    with temporary_profiles_dir("shop", "ci", target) as directory:
        result = dbtRunner().invoke([
            "debug", "--project-dir", str(PROJECT), "--profiles-dir", str(directory),
            "--log-path", str(tmp_path / "logs")])
    assert result.success, result.exception
    assert database.exists()
