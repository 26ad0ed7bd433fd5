"""`jalon engine …`: simulate adaptive tests and calibrate items from the command line.

File formats (see docs/engine.md):
- simulate reads `{"items": [{"id", "a", "b", "c"?, "d"?, "competence"?, "tube"?, "skill"?}]}`
  and a JSON list of true abilities, and writes
  `{"estimates": [[...]], "standard_errors": [[...]], "items": [[...]]}`;
- calibrate reads a CSV (a header of item ids, an optional `count` column, empty cells for
  items not presented) or JSON `{"items": [...], "responses": [[1, 0, null, ...]], "counts"?}`,
  and writes `{"model", "items": [{"id", "a", "b", "c", "intercept", "answers"}], ...}`, which
  simulate accepts as a bank.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import click
import numpy as np

from engine.calibration import CalibrationModel, calibrate
from engine.config import ContentRules, EngineConfig, Exposure, Selector, Stopping
from engine.pool import ItemPool
from engine.selection import ExposureLedger
from engine.simulation import simulate, sympson_hetter_parameters

SELECTORS = {
    "max-info": (Selector.MAX_INFO, Exposure.NONE),
    "posterior-info": (Selector.POSTERIOR_INFO, Exposure.NONE),
    "randomesque": (Selector.MAX_INFO, Exposure.RANDOMESQUE),
    "geometric": (Selector.MAX_INFO, Exposure.GEOMETRIC),
    "progressive-restricted": (Selector.MAX_INFO, Exposure.PROGRESSIVE_RESTRICTED),
    "restricted": (Selector.MAX_INFO, Exposure.RESTRICTED),
    "sympson-hetter": (Selector.MAX_INFO, Exposure.SYMPSON_HETTER),
    "priced": (Selector.MAX_INFO, Exposure.PRICED),
}


@click.group(name="engine")
def engine_cli() -> None:
    """Adaptive engine tools: simulate tests, calibrate items."""


def _read_json(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise click.BadParameter(f"{path}: {exc}") from exc


@engine_cli.command("simulate")
@click.option("--bank", "bank_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--thetas", "thetas_path", required=True, type=click.Path(exists=True))
@click.option("--length", required=True, type=click.IntRange(min=1))
@click.option("--seed", required=True, type=int)
@click.option("--selector", default="max-info", show_default=True, type=click.Choice(SELECTORS))
@click.option(
    "--max-exposure",
    type=click.FloatRange(0, 1, min_open=True),
    default=None,
    help="Target maximum exposure rate (implies priced exposure control for max-info).",
)
@click.option("--no-content-rules", is_flag=True, help="Switch every content rule off.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False))
def simulate_command(
    bank_path: str,
    thetas_path: str,
    length: int,
    seed: int,
    selector: str,
    max_exposure: float | None,
    no_content_rules: bool,
    out_path: str,
) -> None:
    """Simulate one adaptive test per true ability; simulees answer at random from the model."""
    bank = _read_json(bank_path)
    if not isinstance(bank, dict) or not isinstance(bank.get("items"), list):
        raise click.BadParameter('the bank must be {"items": [...]}', param_hint="--bank")
    try:
        pool = ItemPool.from_records(bank["items"])
    except (KeyError, TypeError, ValueError) as exc:
        raise click.BadParameter(f"invalid item: {exc}", param_hint="--bank") from exc
    thetas = _read_json(thetas_path)
    if not isinstance(thetas, list) or not all(isinstance(t, int | float) for t in thetas):
        raise click.BadParameter("must be a JSON list of numbers", param_hint="--thetas")
    sel, exposure = SELECTORS[selector]
    if max_exposure is not None and exposure is Exposure.NONE:
        exposure = Exposure.PRICED
    config = EngineConfig(
        selector=sel,
        exposure=exposure,
        max_exposure=max_exposure if max_exposure is not None else 1.0,
        rules=ContentRules.off() if no_content_rules else ContentRules(),
        stopping=Stopping.fixed(length),
    )
    ledger = ExposureLedger.empty(len(pool))
    if exposure is Exposure.SYMPSON_HETTER:
        ledger.sympson_hetter_k = sympson_hetter_parameters(pool, thetas, config, seed + 1)
    result = simulate(pool, thetas, config, seed, exposure=ledger)
    payload = {
        "estimates": result.estimates,
        "standard_errors": result.standard_errors,
        "items": result.items,
    }
    Path(out_path).write_text(json.dumps(payload), encoding="utf-8")
    click.echo(f"{len(thetas)} simulees × {length} items → {out_path}", err=True)


def _read_responses(path: str) -> tuple[list[str], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    if path.endswith(".json"):
        data = _read_json(path)
        ids = [str(x) for x in data["items"]]
        rows = [[math.nan if v is None else float(v) for v in row] for row in data["responses"]]
        counts = data.get("counts") or [1.0] * len(rows)
        return ids, np.array(rows, dtype=np.float64), np.array(counts, dtype=np.float64)
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        has_count = header[-1].strip().lower() == "count"
        ids = header[:-1] if has_count else header
        rows, counts = [], []
        for line in reader:
            if not line:
                continue
            cells = line[: len(ids)]
            rows.append(
                [float(v) if v.strip() not in ("", "NA", "nan") else math.nan for v in cells]
            )
            counts.append(float(line[-1]) if has_count else 1.0)
    return ids, np.array(rows, dtype=np.float64), np.array(counts, dtype=np.float64)


@engine_cli.command("calibrate")
@click.option("--responses", "responses_path", required=True, type=click.Path(exists=True))
@click.option("--model", type=click.Choice(["2PL", "3PL"]), default="2PL", show_default=True)
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False))
def calibrate_command(responses_path: str, model: str, out_path: str) -> None:
    """Calibrate items by MML-EM from a sparse response matrix (empty cell = not presented)."""
    try:
        ids, y, counts = _read_responses(responses_path)
    except (KeyError, ValueError, StopIteration) as exc:
        raise click.BadParameter(f"unreadable responses: {exc}", param_hint="--responses") from exc
    result = calibrate(y, CalibrationModel(model), weights=counts)
    payload = {
        "model": model,
        "items": [
            {
                "id": i,
                "a": it.a,
                "b": it.b,
                "c": it.c,
                "intercept": it.intercept,
                "answers": it.answers,
            }
            for i, it in zip(ids, result.items, strict=True)
        ],
        "log_likelihood": result.log_likelihood,
        "iterations": result.iterations,
        "converged": result.converged,
    }
    Path(out_path).write_text(json.dumps(payload, indent=1), encoding="utf-8")
    click.echo(f"{len(ids)} items calibrated ({model}) → {out_path}", err=True)
