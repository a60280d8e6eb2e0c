"""Hyperparameter search with Optuna: short training trials ranked by the validation ELBO in bits per character (the
measure every tokenizer and task shares).

TPE (Bergstra et al. 2011, "Algorithms for Hyper-Parameter Optimization") samples the learning rate, batch size,
warm-up, dropout and width; a grid sampler keeps the plain grid of learning rates x batch sizes. Each trial reports
its validation bits/char at every evaluation, and a median or Hyperband (Li et al. 2018) pruner stops the trials
that fall behind. The study lives in an Optuna storage (SQLite by default), so a killed search resumes and several
processes can share one study.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from textdiffusion.config import DataConfig, ModelConfig, SearchConfig, TrainConfig
from textdiffusion.training.builder import train
from textdiffusion.training.optim import default_warmup_steps, warmup_steps
from textdiffusion.training.parts import Evaluation
from textdiffusion.training.search_plot import plot_study
from textdiffusion.training.search_steps import STEPS_NAME, score_steps
from textdiffusion.training.state import TrainingDiverged, TrainingError

logger = logging.getLogger(__name__)

TABLE_NAME = "search.json"
PLOT_NAME = "search.png"
FLAGS = {
    "lr": "--lr",
    "batch_size": "--batch-size",
    "warmup_steps": "--warmup-steps",
    "dropout": "--dropout",
    "dim": "--dim",
}


class SearchError(ValueError):
    """The search cannot run (optuna missing, a bad search space); the message names the flag."""


def _optuna():
    try:
        import optuna
    except ImportError:
        raise SearchError(
            "textdiffusion search needs optuna: pip install 'textdiffusion[search]'"
        ) from None
    return optuna


@dataclasses.dataclass
class Trial:
    """One trial of the study, as search.json and `format_trials` show it."""

    number: int
    state: str
    """complete, pruned, running or fail."""
    params: dict[str, Any]
    """The sampled settings (lr, batch_size, and with tpe warmup_steps, dropout, dim)."""
    out: str
    steps: int = 0
    valid_bits_per_char: float = math.inf
    """The trial's last validation bits/char (a pruned trial's at the step it was stopped); inf when it diverged."""
    tokens_per_second: float = 0.0
    seconds: float = 0.0
    """Wall time of the trial (training, evaluations and saving)."""
    error: str | None = None

    @property
    def flags(self) -> str:
        """The train options that reproduce the trial."""
        return " ".join(f"{FLAGS[k]} {v:g}" for k, v in self.params.items())


def _space(
    search: SearchConfig, config: TrainConfig, model: ModelConfig | None, fine_tuning: bool
) -> dict[str, Any]:
    """The search space: name -> list of choices (categorical) or (low, high, kind) ranges."""
    for b in search.batch_sizes:
        if b % config.grad_accum:
            raise SearchError(
                f"--batch-sizes: {b} is not divisible by --grad-accum {config.grad_accum}"
            )
    if search.sampler == "grid":
        return {"lr": list(search.lrs), "batch_size": list(search.batch_sizes)}
    default = default_warmup_steps(config.steps)
    warmup = search.warmup_range or (0, 2 * default)
    space: dict[str, Any] = {
        "lr": (*search.lr_range, "log"),
        "batch_size": list(search.batch_sizes),
        "warmup_steps": (*warmup, "int"),
    }
    if not fine_tuning:  # a fine-tuned model keeps its shape and its dropout
        model = model or ModelConfig()
        space["dropout"] = (*search.dropout_range, "float")
        dims = search.dims or (model.dim // 2, model.dim, model.dim * 2)
        for dim in dims:
            if dim % model.n_heads or (dim // model.n_heads) % 2:
                raise SearchError(
                    f"--dims: {dim} is not divisible by --n-heads {model.n_heads} into even head sizes"
                )
        space["dim"] = sorted(set(dims))
    return space


def _suggest(trial, space: dict[str, Any], *, grid: bool) -> dict[str, Any]:
    params = {}
    for name, choices in space.items():
        try:
            if (
                grid
            ):  # the grid sampler picks the value; a range lets a resumed study change the grid
                kind = int if name == "batch_size" else float
                suggest = trial.suggest_int if kind is int else trial.suggest_float
                params[name] = suggest(name, kind(min(choices)), kind(max(choices)))
            elif isinstance(choices, list):
                params[name] = trial.suggest_categorical(name, choices)
            else:
                low, high, kind = choices
                if kind == "int":
                    params[name] = trial.suggest_int(name, int(low), int(high))
                else:
                    params[name] = trial.suggest_float(name, low, high, log=kind == "log")
        except ValueError as exc:  # optuna: a categorical parameter whose choices changed
            raise SearchError(
                f"--{name.replace('_', '-')}s: this study sampled {name} from other choices before ({exc}); "
                "keep them, or start another study (--study-name)"
            ) from None
    return params


def _storage(optuna, url: str):
    """An RDB storage whose trials beat a heartbeat: a trial of a killed process is failed once it has been silent
    for 3 minutes, and run again with the same parameters."""
    import warnings

    storages = optuna.storages
    with (
        warnings.catch_warnings()
    ):  # heartbeats are "experimental" in optuna, and have been since 2.8
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if hasattr(storages, "RetryHeartbeatStaleTrialCallback"):  # optuna >= 4.9
            retry = dict(
                heartbeat_stale_trial_callback=storages.RetryHeartbeatStaleTrialCallback(1)
            )
        else:
            retry = dict(failed_trial_callback=storages.RetryFailedTrialCallback(max_retry=1))
        try:
            return storages.RDBStorage(url, heartbeat_interval=60, grace_period=180, **retry)
        except Exception as exc:  # a malformed URL, an unknown database driver
            raise SearchError(f"--storage {url}: {type(exc).__name__}: {exc}") from None


def search(
    data: DataConfig,
    config: TrainConfig,
    *,
    out: str | Path,
    search_config: SearchConfig | None = None,
    model: ModelConfig | None = None,
    **kwargs,
) -> list[Trial]:
    """Run (or resume) the study of `search_config` and return all its trials, best first.

    Each trial trains with `config` (and `model`) changed by the sampled settings into `out/trial-NNN`: a loadable
    model when it ran to the end, the run logs of one the pruner stopped. Give `config` a short budget (`steps`, or
    `max_minutes` to compare at equal cost) and an `eval_every` below `steps` so the pruner sees the trials' progress.
    A trial that diverges scores inf and the search goes on. `out/search.json` holds the table, rewritten after each
    trial, and `out/search.png` the study's plot. `kwargs` go to `train` (process, task, init_from, ...).
    """
    optuna = _optuna()
    search = search_config or SearchConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    space = _space(search, config, model, fine_tuning=kwargs.get("init_from") is not None)
    if search.pruner != "none" and not 0 < config.eval_every < config.steps:
        logger.warning(
            "the trials evaluate only at their last step (--eval-every %d, --steps %d), so the %s pruner "
            "cannot stop any early: set --eval-every to a fraction of --steps",
            config.eval_every,
            config.steps,
            search.pruner,
        )
    # no trial is judged while it may still be warming up: at the first evaluations the trials with long warm-ups
    # have barely started, and the ranks then say little about the ends
    longest_warmup = space["warmup_steps"][1] if "warmup_steps" in space else warmup_steps(config)
    if search.pruner == "median":
        pruner = optuna.pruners.MedianPruner(
            n_startup_trials=search.prune_after, n_warmup_steps=longest_warmup + 1
        )
    elif search.pruner == "hyperband":
        pruner = optuna.pruners.HyperbandPruner(
            min_resource=max(1, config.eval_every, longest_warmup + 1), max_resource=config.steps
        )
    else:
        pruner = optuna.pruners.NopPruner()
    storage = _storage(optuna, search.storage or f"sqlite:///{(out / 'study.db').resolve()}")
    study = optuna.create_study(
        study_name=search.study_name or out.resolve().name,
        storage=storage,
        direction="minimize",
        pruner=pruner,
        load_if_exists=True,
    )
    seed = (
        search.sampler_seed if search.sampler_seed is not None else config.seed + len(study.trials)
    )
    if search.sampler == "grid":
        study.sampler = optuna.samplers.GridSampler(space, seed=seed)
    else:
        study.sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    grid_size = math.prod(len(v) for v in space.values()) if search.sampler == "grid" else 0
    target = search.trials or grid_size or 20
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)

    def objective(trial) -> float:
        params = _suggest(trial, space, grid=search.sampler == "grid")
        folder = out / f"trial-{trial.number:03d}"
        trial.set_user_attr("out", str(folder))
        logger.info("trial %d: %s", trial.number, params)
        trial_config = dataclasses.replace(
            config,
            **{k: v for k, v in params.items() if k in ("lr", "batch_size", "warmup_steps")},
            save_every=max(1, config.steps),  # the model at the end, no checkpoints on the way
        )
        trial_model = model
        if "dim" in params or "dropout" in params:
            changes = {k: v for k, v in params.items() if k in ("dim", "dropout")}
            trial_model = dataclasses.replace(model or ModelConfig(), **changes)

        def report(evaluation: Evaluation) -> None:
            trial.report(evaluation.valid_bits_per_char, evaluation.step)
            trial.set_user_attr("steps", evaluation.step)
            if trial.should_prune():
                logger.info(
                    "trial %d pruned at step %d: %.4f bits/char",
                    trial.number,
                    evaluation.step,
                    evaluation.valid_bits_per_char,
                )
                raise optuna.TrialPruned(
                    f"pruned at step {evaluation.step}: {evaluation.valid_bits_per_char:.4f} bits/char"
                )

        try:
            result = train(
                data, trial_config, out=folder, model=trial_model, callbacks=[report], **kwargs
            )
        except TrainingDiverged as exc:
            trial.set_user_attr("error", str(exc))
            return math.inf
        trial.set_user_attr("steps", result.step)
        trial.set_user_attr("tokens_per_second", result.tokens_per_second)
        if result.valid_bits_per_char is None:
            raise TrainingError(
                "search ranks trials by validation bits/char, and this data has no validation text: give --valid "
                "or a --valid-fraction above 0"
            )
        logger.info("trial %d: %.4f bits/char", trial.number, result.valid_bits_per_char)
        return result.valid_bits_per_char

    def write(study, _trial=None) -> None:
        trials = collect(study)
        table = json.dumps([dataclasses.asdict(t) for t in trials], indent=1, default=str)
        _replace_text(out / TABLE_NAME, table + "\n")

    done = sum(t.state in finished for t in study.trials)
    if done >= target:
        logger.info("the study already holds %d finished trials (--trials %d)", done, target)
    else:
        study.optimize(
            objective,
            n_trials=target - done,
            timeout=search.timeout,
            callbacks=[optuna.study.MaxTrialsCallback(target, states=finished), write],
        )
    write(study)
    try:
        plot_study(study, out / PLOT_NAME)
    except Exception as exc:  # a plot is never worth losing the table
        logger.warning("could not draw %s: %s", out / PLOT_NAME, exc)
    trials = collect(study)
    best = trials[0] if trials and math.isfinite(trials[0].valid_bits_per_char) else None
    if best is not None and (Path(best.out) / "model.safetensors").is_file():
        sampling = score_steps(best.out, data, config)
        if sampling is not None:
            _replace_text(out / STEPS_NAME, json.dumps(sampling, indent=1) + "\n")
    return trials


def _replace_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def collect(study) -> list[Trial]:
    """The study's trials as `Trial`s, best first: finished ones by value, then pruned ones by their last report,
    then diverged, running and failed ones."""
    trials = []
    for t in study.trials:
        state = t.state.name.lower()
        if t.value is not None:
            value = t.value
        elif t.intermediate_values:
            value = t.intermediate_values[max(t.intermediate_values)]
        else:
            value = math.inf
        trials.append(
            Trial(
                number=t.number,
                state=state,
                params=dict(t.params),
                out=t.user_attrs.get("out", ""),
                steps=t.user_attrs.get("steps", 0),
                valid_bits_per_char=value,
                tokens_per_second=t.user_attrs.get("tokens_per_second", 0.0),
                seconds=t.duration.total_seconds() if t.duration is not None else 0.0,
                error=t.user_attrs.get("error"),
            )
        )
    order = {"complete": 0, "pruned": 1}
    trials.sort(
        key=lambda t: (
            not math.isfinite(t.valid_bits_per_char),
            order.get(t.state, 2),
            t.valid_bits_per_char,
        )
    )
    return trials


def format_trials(trials: Sequence[Trial]) -> str:
    """The trials as a markdown table, best first."""
    names = list(dict.fromkeys(k for t in trials for k in t.params))
    lines = [
        "| trial | " + " | ".join(names) + " | steps | valid bits/char | tok/s | seconds | note |",
        "|---:|" + "---:|" * len(names) + "---:|---:|---:|---:|---|",
    ]
    for t in trials:
        note = "diverged" if t.error else "" if t.state == "complete" else t.state
        params = " | ".join(f"{t.params[k]:.3g}" if k in t.params else "" for k in names)
        lines.append(
            f"| {t.number} | {params} | {t.steps} | {t.valid_bits_per_char:.4f} | "
            f"{f'{t.tokens_per_second:,.0f}' if t.tokens_per_second else '-'} | {t.seconds:.0f} | {note} |"
        )
    return "\n".join(lines)
