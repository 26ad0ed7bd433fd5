from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from api.cli_engine import engine_cli

LSAT7 = Path(__file__).resolve().parent / "data" / "lsat7.csv"


def _bank(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    items = [
        {
            "id": f"it{i}",
            "a": float(rng.normal(1.2, 0.2)),
            "b": float(rng.normal()),
            "competence": f"c{i % 4}",
        }
        for i in range(80)
    ]
    items[0]["c"] = 0.2
    path = tmp_path / "bank.json"
    path.write_text(json.dumps({"items": items}))
    return path


def test_simulate_writes_estimates_errors_and_items_per_simulee(tmp_path: Path) -> None:
    bank = _bank(tmp_path)
    thetas = tmp_path / "thetas.json"
    thetas.write_text(json.dumps([-1.0, 0.0, 1.5]))
    out = tmp_path / "out.json"
    result = CliRunner().invoke(
        engine_cli,
        [
            "simulate",
            "--bank",
            str(bank),
            "--thetas",
            str(thetas),
            "--length",
            "8",
            "--seed",
            "3",
            "--selector",
            "geometric",
            "--max-exposure",
            "0.5",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert set(data) == {"estimates", "standard_errors", "items"}
    assert [len(e) for e in data["estimates"]] == [8, 8, 8]
    assert all(len(s) == 8 for s in data["standard_errors"])
    assert all(len(set(t)) == 8 for t in data["items"])
    again = tmp_path / "again.json"
    CliRunner().invoke(
        engine_cli,
        [
            "simulate",
            "--bank",
            str(bank),
            "--thetas",
            str(thetas),
            "--length",
            "8",
            "--seed",
            "3",
            "--selector",
            "geometric",
            "--max-exposure",
            "0.5",
            "--out",
            str(again),
        ],
    )
    assert json.loads(again.read_text()) == data


def test_simulate_without_content_rules_may_repeat_a_competence(tmp_path: Path) -> None:
    bank = _bank(tmp_path)
    thetas = tmp_path / "thetas.json"
    thetas.write_text(json.dumps([0.0] * 5))
    out = tmp_path / "out.json"
    result = CliRunner().invoke(
        engine_cli,
        [
            "simulate",
            "--bank",
            str(bank),
            "--thetas",
            str(thetas),
            "--length",
            "10",
            "--seed",
            "1",
            "--no-content-rules",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(out.read_text())["items"][0]) == 10


def test_simulate_rejects_a_bank_without_items(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"questions": []}))
    thetas = tmp_path / "t.json"
    thetas.write_text("[0]")
    result = CliRunner().invoke(
        engine_cli,
        [
            "simulate",
            "--bank",
            str(bad),
            "--thetas",
            str(thetas),
            "--length",
            "2",
            "--seed",
            "1",
            "--out",
            str(tmp_path / "o.json"),
        ],
    )
    assert result.exit_code == 2
    assert "items" in result.output


def test_calibrate_reads_pattern_counts_and_writes_a_simulation_bank(tmp_path: Path) -> None:
    out = tmp_path / "cal.json"
    result = CliRunner().invoke(
        engine_cli,
        ["calibrate", "--responses", str(LSAT7), "--model", "2PL", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["model"] == "2PL"
    assert data["converged"]
    assert [round(it["a"], 2) for it in data["items"]] == [0.99, 1.08, 1.71, 0.77, 0.74]
    assert {"id", "a", "b", "c"} <= set(data["items"][0])


def test_calibrate_reads_a_sparse_json_matrix(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    theta = rng.normal(size=800)
    b = np.linspace(-1, 1, 6)
    y = (rng.random((800, 6)) < 1 / (1 + np.exp(-(theta[:, None] - b)))).astype(int)
    rows = [[None if rng.random() < 0.3 else int(v) for v in row] for row in y]
    src = tmp_path / "resp.json"
    src.write_text(json.dumps({"items": [f"q{j}" for j in range(6)], "responses": rows}))
    out = tmp_path / "cal.json"
    result = CliRunner().invoke(
        engine_cli, ["calibrate", "--responses", str(src), "--model", "3PL", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    items = json.loads(out.read_text())["items"]
    assert [it["id"] for it in items] == [f"q{j}" for j in range(6)]
    assert all(it["answers"] < 800 for it in items)


def test_max_exposure_caps_how_often_an_item_is_served(tmp_path: Path) -> None:
    bank = _bank(tmp_path)
    thetas = tmp_path / "thetas.json"
    thetas.write_text(json.dumps([0.0] * 200))
    out = tmp_path / "out.json"
    args = ["simulate", "--bank", str(bank), "--thetas", str(thetas), "--length", "10"]
    args += ["--seed", "5", "--max-exposure", "0.3", "--out", str(out)]
    result = CliRunner().invoke(engine_cli, args)
    assert result.exit_code == 0, result.output
    tests = json.loads(out.read_text())["items"]
    served: dict[str, int] = {}
    for items in tests:
        for item in items:
            served[item] = served.get(item, 0) + 1
    # every simulee has the same θ: without exposure control they would all get the same test
    assert max(served.values()) / len(tests) <= 0.3 + 1 / len(tests)
