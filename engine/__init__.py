"""Jalon's adaptive engine: IRT models, ability estimation, item selection with exposure
control and content rules, stopping, scoring, calibration and simulation.

Pure Python + NumPy/SciPy: no database, no web, and no I/O but reading a bank file. Everything
random takes a `numpy.random.Generator`, so results are reproducible under a seed.

Per answer, the web app calls::

    bank = get_bank("engine/content/demo", version=campaign.bank_version)  # cached per process
    step = next_step(bank.pool, answers, config, np.random.default_rng([seed, len(answers)]),
                     locale="fr", excluded=seen_before)
    # step.theta, step.se, step.next_item (None when the test stops), step.stop_reason;
    # step.resume(len(answers)) stored and passed back as `resume=` on the next answer spares
    # estimating the earlier answers again (the same step)

and at the end ``score(bank, answers, ScoringConfig(), competences=profile)``.
See docs/engine.md.
"""

from engine.bank import (
    Area,
    Bank,
    BankError,
    BankValidationError,
    Challenge,
    Competence,
    IrtParameters,
    Level,
    Skill,
    Tube,
    get_bank,
    is_correct,
    load_bank,
    normalize_answer,
    validate_bank,
)
from engine.calibration import (
    Anchor,
    CalibrationModel,
    CalibrationResult,
    Drift,
    ItemEstimate,
    ItemFit,
    calibrate,
    drift_report,
    item_fit,
)
from engine.config import (
    ContentRules,
    EngineConfig,
    Exposure,
    Selector,
    Stopping,
    StopReason,
)
from engine.estimation import Estimate, Estimator, Grid, Posterior, Prior, estimate
from engine.models import grm_information, grm_probability, information, probability
from engine.pool import ItemPool
from engine.scoring import CompetenceScore, Score, ScoringConfig, level_cuts_from_bank, score
from engine.selection import ExposureLedger
from engine.session import Resume, Session, Step, next_step

__all__ = [
    "Anchor",
    "Area",
    "Bank",
    "BankError",
    "BankValidationError",
    "CalibrationModel",
    "CalibrationResult",
    "Challenge",
    "Competence",
    "CompetenceScore",
    "ContentRules",
    "Drift",
    "EngineConfig",
    "Estimate",
    "Estimator",
    "Exposure",
    "ExposureLedger",
    "Grid",
    "IrtParameters",
    "ItemEstimate",
    "ItemFit",
    "ItemPool",
    "Level",
    "Posterior",
    "Prior",
    "Resume",
    "Score",
    "ScoringConfig",
    "Selector",
    "Session",
    "Skill",
    "Step",
    "StopReason",
    "Stopping",
    "Tube",
    "calibrate",
    "drift_report",
    "estimate",
    "get_bank",
    "grm_information",
    "grm_probability",
    "information",
    "is_correct",
    "item_fit",
    "level_cuts_from_bank",
    "load_bank",
    "next_step",
    "normalize_answer",
    "probability",
    "score",
    "validate_bank",
]
