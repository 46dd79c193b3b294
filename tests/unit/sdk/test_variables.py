"""Variables (issue #14): Prefect 3's ``Variable.get/set/unset`` on the local store, with
Prefect 3's name rule and value limit."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from headwater import flow
from headwater.blocks import stores
from headwater.exceptions import InvalidNameError, VariableAlreadyExistsError
from headwater.variables import Variable


@pytest.fixture(autouse=True)
def fresh_stores() -> None:
    stores.reset()


def test_set_get_unset(headwater_home: Path) -> None:
    assert Variable.get("batch_size") is None
    assert Variable.get("batch_size", default=100) == 100
    variable = Variable.set("batch_size", 500)
    assert (variable.name, variable.value) == ("batch_size", 500)
    assert Variable.get("batch_size", default=100) == 500
    stored = json.loads((headwater_home / "variables" / "batch_size.json").read_text())
    assert stored == {"name": "batch_size", "value": 500}
    assert Variable.unset("batch_size") is True
    assert Variable.unset("batch_size") is False
    assert Variable.get("batch_size") is None


@pytest.mark.parametrize("value", ["text", 3, 2.5, True, None, [1, "a"], {"k": {"n": [1]}}])
def test_any_json_value_round_trips(value: Any) -> None:
    Variable.set("v", value, overwrite=True)
    assert Variable.get("v", default="absent") == value


def test_a_stored_null_is_not_the_default() -> None:
    Variable.set("nothing", None)
    assert Variable.get("nothing", default="absent") is None


def test_set_refuses_an_existing_name_without_overwrite() -> None:
    Variable.set("region", "eu")
    with pytest.raises(VariableAlreadyExistsError) as info:
        Variable.set("region", "us")
    assert "Variable.set('region')" in str(info.value)
    assert "overwrite=True" in str(info.value)
    assert Variable.get("region") == "eu"
    Variable.set("region", "us", overwrite=True)
    assert Variable.get("region") == "us"


@pytest.mark.parametrize("name", ["Batch", "batch size", "a/b", "", "x" * 256])
def test_names_follow_prefects_rule(name: str) -> None:
    with pytest.raises(InvalidNameError, match="lowercase letters, digits, '_' and '-'"):
        Variable.set(name, 1)


def test_names_may_use_underscores_dashes_and_255_characters() -> None:
    names = ["batch_size", "batch-size", "x" * 255, "x" * 254 + "y"]
    for i, name in enumerate(names):
        Variable.set(name, i)
    assert [Variable.get(name) for name in names] == [0, 1, 2, 3]
    assert stores.current().variables.list() == {name: i for i, name in enumerate(names)}


def test_values_must_be_json_of_at_most_5000_characters() -> None:
    Variable.set("fits", "x" * 4998)  # 5000 characters with its quotes
    with pytest.raises(ValueError, match="5001 characters of JSON; at most 5000"):
        Variable.set("too-big", "x" * 4999)
    with pytest.raises(ValueError, match="the value must be JSON"):
        Variable.set("not-json", {1, 2})
    with pytest.raises(ValueError, match="the value must be JSON"):
        Variable.set("nan", float("nan"))


def test_called_from_async_def_they_return_coroutines_as_in_prefect() -> None:
    @flow
    async def main() -> tuple[Any, Any, bool]:
        await Variable.set("mode", "async")
        value = await Variable.get("mode")
        also = await Variable.aget("mode")
        return value, also, await Variable.unset("mode")

    assert asyncio.run(main()) == ("async", "async", True)


def test_a_typed_variable_reads_the_same_value() -> None:
    Variable.set("threshold", 0.75)
    assert Variable[float].get("threshold") == 0.75
