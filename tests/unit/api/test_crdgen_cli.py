"""``python -m headwater_operator.crdgen`` writes both copies and ``--check`` catches drift."""

from __future__ import annotations

from pathlib import Path

import pytest
from headwater_operator import crdgen


def test_writes_identical_copies_for_crds_and_the_chart(tmp_path: Path) -> None:
    assert crdgen.main(["--root", str(tmp_path)]) == 0
    for name in crdgen.rendered_files():
        assert (tmp_path / "crds" / name).read_bytes() == (
            tmp_path / "charts/headwater/files/crds" / name
        ).read_bytes()
    assert crdgen.main(["--root", str(tmp_path), "--check"]) == 0


def test_check_fails_and_shows_a_diff_when_a_file_was_edited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crdgen.main(["--root", str(tmp_path)])
    edited = tmp_path / "charts/headwater/files/crds/flows.headwater.dev.yaml"
    edited.write_text(edited.read_text().replace("Image", "Picture"), encoding="utf-8")
    capsys.readouterr()

    assert crdgen.main(["--root", str(tmp_path), "--check"]) == 1
    err = capsys.readouterr().err
    assert "charts/headwater/files/crds/flows.headwater.dev.yaml (checked in)" in err
    assert "-      name: Picture" in err
    assert "run `python -m headwater_operator.crdgen`" in err


def test_check_reports_missing_and_stale_files(tmp_path: Path) -> None:
    crdgen.main(["--root", str(tmp_path)])
    (tmp_path / "crds/schedules.headwater.dev.yaml").unlink()
    (tmp_path / "crds/widgets.headwater.dev.yaml").write_text("old", encoding="utf-8")
    assert crdgen.find_drift(tmp_path) == [
        "crds/schedules.headwater.dev.yaml: missing",
        "crds/widgets.headwater.dev.yaml: stale, no model generates it",
    ]
