"""The picture of a search: each trial's value in order, their validation curves, and the parameters' importances
(fANOVA, as optuna computes it), written beside search.json."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from textdiffusion.training.runlog import save_figure

logger = logging.getLogger(__name__)


def plot_study(study, png: str | Path) -> Path:
    """Draw the study into `png`: each trial's final value over the trials with the best so far, the validation
    curves of every trial (pruned ones dashed), and the parameter importances (fANOVA, Hutter et al. 2014; without
    scikit-learn, PED-ANOVA) of the finished trials."""
    import optuna  # a study exists, so optuna is installed
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(14, 4.2))
    FigureCanvasAgg(figure)
    figure.subplots_adjust(left=0.05, right=0.98, bottom=0.14, top=0.9, wspace=0.35)
    values, curves, importance = (figure.add_subplot(1, 3, i) for i in (1, 2, 3))
    state = optuna.trial.TrialState
    complete = [t for t in study.trials if t.state == state.COMPLETE and math.isfinite(t.value)]
    pruned = [t for t in study.trials if t.state == state.PRUNED and t.intermediate_values]
    values.scatter([t.number for t in complete], [t.value for t in complete], label="finished")
    values.scatter(
        [t.number for t in pruned],
        [t.intermediate_values[max(t.intermediate_values)] for t in pruned],
        marker="x",
        color="tab:red",
        label="pruned (last report)",
    )
    best, line = math.inf, []
    for t in sorted(complete, key=lambda t: t.number):
        best = min(best, t.value)
        line.append((t.number, best))
    if line:
        values.step(*zip(*line), where="post", color="black", alpha=0.6, label="best so far")
    values.set(title="validation bits/char of each trial", xlabel="trial", ylabel="bits/char")
    values.legend(fontsize=8)
    for t in study.trials:
        if t.intermediate_values:
            steps = sorted(t.intermediate_values)
            curves.plot(
                steps,
                [t.intermediate_values[s] for s in steps],
                linestyle="--" if t.state == state.PRUNED else "-",
                marker=".",  # a trial pruned at its first report is one point
                alpha=0.7,
            )
    curves.set(title="validation during each trial (dashed: pruned)", xlabel="step")
    names, scores, method = [], [], "fANOVA"
    if len(complete) >= 2:
        finite = optuna.create_study(direction="minimize")  # in memory: the finished, finite trials
        finite.add_trials(complete)
        try:
            try:
                evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
            except ImportError:  # its random forest comes from scikit-learn
                evaluator, method = optuna.importance.PedAnovaImportanceEvaluator(), "PED-ANOVA"
            ranked = optuna.importance.get_param_importances(finite, evaluator=evaluator)
            names, scores = list(ranked)[::-1], list(ranked.values())[::-1]
        except (RuntimeError, ValueError) as exc:  # e.g. no parameter varied
            logger.info("no parameter importances: %s", exc)
    if names:
        importance.barh(names, scores)
    else:
        importance.text(
            0.5, 0.5, "needs 2 finished trials", ha="center", transform=importance.transAxes
        )
    importance.set(title=f"parameter importance ({method})", xlabel="importance (sums to 1)")
    values.xaxis.get_major_locator().set_params(integer=True)
    for ax in (values, curves, importance):
        ax.grid(alpha=0.3)
    return save_figure(figure, png)
