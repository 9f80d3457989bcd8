"""The committed schemas and AsyncAPI document are exactly what the models produce."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from huddle_contracts.export import (
    ASYNCAPI_FILE,
    CONTRACTS_ROOT,
    RELEASED_DIR,
    SCHEMAS_DIR,
    drift,
    generated_files,
    main,
)
from huddle_contracts.registry import EVENT_TYPES, topic_for


def test_committed_files_match_the_models() -> None:
    assert drift() == [], "run `uv run python -m huddle_contracts.export` and commit the result"


def test_every_event_type_has_a_committed_schema() -> None:
    expected = {f"{SCHEMAS_DIR}/{event_type}.json" for event_type in EVENT_TYPES}
    assert expected | {ASYNCAPI_FILE} == set(generated_files())


def test_committed_files_are_sorted_indented_and_end_with_a_newline() -> None:
    for relative in generated_files():
        text = (CONTRACTS_ROOT / relative).read_text(encoding="utf-8")
        assert text.endswith("}\n")
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


@pytest.fixture
def contracts_copy(tmp_path: Path) -> Path:
    for relative in generated_files():
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(CONTRACTS_ROOT / relative, target)
    shutil.copytree(
        CONTRACTS_ROOT / SCHEMAS_DIR / RELEASED_DIR, tmp_path / SCHEMAS_DIR / RELEASED_DIR
    )
    return tmp_path


def test_check_passes_on_an_up_to_date_copy(contracts_copy: Path) -> None:
    assert main(["--check", "--root", str(contracts_copy)]) == 0


def test_check_names_the_drifted_file(
    contracts_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    drifted = contracts_copy / SCHEMAS_DIR / "huddle.peer_matched.v1.json"
    drifted.write_text(drifted.read_text().replace('"minItems"', '"maxItems"') + " ")

    assert main(["--check", "--root", str(contracts_copy)]) == 1
    err = capsys.readouterr().err
    assert "huddle.peer_matched.v1.json differs from what the models produce" in err
    assert "uv run python -m huddle_contracts.export" in err


def test_check_names_missing_and_stale_files(
    contracts_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (contracts_copy / ASYNCAPI_FILE).unlink()
    (contracts_copy / SCHEMAS_DIR / "huddle.gone.v1.json").write_text("{}\n")

    assert main(["--check", "--root", str(contracts_copy)]) == 1
    err = capsys.readouterr().err
    assert "asyncapi.json is missing" in err
    assert "huddle.gone.v1.json is produced by no model (stale)" in err


def test_export_repairs_drift_and_leaves_released_baselines_alone(contracts_copy: Path) -> None:
    released = contracts_copy / SCHEMAS_DIR / RELEASED_DIR / "v1" / "huddle.peer_matched.v1.json"
    released.write_text('{"frozen": true}\n')
    (contracts_copy / ASYNCAPI_FILE).write_text("{}\n")
    (contracts_copy / SCHEMAS_DIR / "huddle.gone.v1.json").write_text("{}\n")

    assert main(["--root", str(contracts_copy)]) == 0

    assert drift(contracts_copy) == []
    assert released.read_text() == '{"frozen": true}\n'


def test_release_adds_new_baselines_but_never_rewrites_a_frozen_one(
    contracts_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    v1 = contracts_copy / SCHEMAS_DIR / RELEASED_DIR / "v1"
    frozen = v1 / "huddle.peer_matched.v1.json"
    frozen.write_text('{"frozen": true}\n')
    (v1 / "huddle.referral_made.v1.json").unlink()

    assert main(["--root", str(contracts_copy), "--release"]) == 1

    assert frozen.read_text() == '{"frozen": true}\n'
    assert (v1 / "huddle.referral_made.v1.json").exists()
    assert "huddle.peer_matched.v1.json is released and frozen" in capsys.readouterr().err


def test_release_can_freeze_a_later_version(contracts_copy: Path) -> None:
    assert main(["--root", str(contracts_copy), "--release", "v1.1"]) == 0
    later = contracts_copy / SCHEMAS_DIR / RELEASED_DIR / "v1.1"
    assert sorted(p.stem for p in later.glob("*.json")) == sorted(EVENT_TYPES)


def test_the_module_runs_as_a_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "huddle_contracts.export", "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "contracts up to date" in result.stdout


def test_the_readme_catalogue_names_every_event_and_its_topic() -> None:
    readme = (CONTRACTS_ROOT / "README.md").read_text(encoding="utf-8")
    for event_type, model in EVENT_TYPES.items():
        row = f"| `{model.__name__}` (`{event_type}`) | `{topic_for(model).name}` |"
        assert row in readme, f"README event catalogue lacks: {row}"
