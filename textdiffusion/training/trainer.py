"""The training loop: one process or many under torchrun, resumable exactly, checkpoints written atomically.

step:  t = process.sample_t(...); xt = process.q_sample(x0, t); logits = model(xt, t); loss = mean(process.loss(...))
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from textdiffusion.checkpoint import (
    load_training_state,
    load_weights,
    unwrap,
    weights_state,
)
from textdiffusion.config import TrainConfig
from textdiffusion.evaluation.elbo import LN2, autoregressive_nll, diffusion_nll
from textdiffusion.training import distributed
from textdiffusion.training.batches import micro_batches
from textdiffusion.training.ema import EMA
from textdiffusion.training.optim import (
    WARMUP_SHARE,
    build_optimizer,
    learning_rate,
    warmup_steps,
    warmup_warning,
)
from textdiffusion.training.parts import EvalCallback, Evaluation, TrainingParts, TrainResult
from textdiffusion.training.runlog import CURVES_NAME, RunLog, plot_curves
from textdiffusion.training.state import (
    CheckpointState,
    TrainingDiverged,
    find_checkpoints,
)

logger = logging.getLogger(__name__)


class Trainer(CheckpointState):
    """Holds the state of one run; `run()` trains to `config.steps` (or `--max-minutes`) and returns a TrainResult.

    It is handed its parts (training/builder.py: `build_trainer` is the public path) and adds the execution: the
    distributed wrapper, compilation, the optimiser, EMA, the noise generator and the dropout RNG stream.
    """

    def __init__(
        self,
        parts: TrainingParts,
        config: TrainConfig,
        *,
        out: str | Path,
        info: distributed.DistInfo,
        resume_from: Path | None = None,
        progress: bool = True,
    ) -> None:
        self.config, self.out, self.info, self.progress = config, Path(out), info, progress
        self.device, self.resume_from = info.device, resume_from
        self.net, self.tokenizer, self.process = parts.net, parts.tokenizer, parts.process
        self.objective, self.stream, self.valid = parts.objective, parts.stream, parts.valid
        self.ckpt_config = parts.checkpoint
        self.model = distributed.wrap(self.net, info, parallel=config.parallel)
        if config.compile:
            self.model = torch.compile(self.model)
            self.objective.compile()
        self.optimizer = build_optimizer(self.net, config)
        self.ema = EMA(self.net, decay=config.ema_decay) if config.ema_decay > 0 else None
        seed = config.seed * 1000 + info.rank  # noise and dropout differ between ranks
        self.noise = torch.Generator(device=self.device).manual_seed(seed)
        self.rng_state = _seeded_rng_state(seed, self.device)
        self.step = 0
        self.started: float | None = None
        self.time_fraction = 0.0  # of the --max-minutes budget, as of the last log step
        self.tokens_seen = 0  # on this rank, prefix and padding included (for the tokens/s display)
        if resume_from is not None:
            self._load_state(load_training_state(resume_from))
        self.autocast = self.device.type == "cuda" and config.precision in ("auto", "bf16")

    @contextlib.contextmanager
    def _own_rng(self):
        """Run with the trainer's own global-RNG stream (dropout draws from the global RNG), then give the caller
        back its state: the run is reproducible and resumable, and touches no one else's randomness."""
        cuda = self.device.type == "cuda"
        with torch.random.fork_rng(devices=[self.device] if cuda else [], device_type="cuda"):
            torch.set_rng_state(self.rng_state["torch"])
            if cuda:
                torch.cuda.set_rng_state(self.rng_state["cuda"], self.device)
            yield
            self.rng_state = _rng_state(self.device)

    # -- evaluation ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> tuple[float, float] | None:
        """Validation ELBO (diffusion) or NLL (AR) with the EMA weights: (nats per token, bits per char)."""
        if len(self.valid) == 0:
            return None
        model = unwrap(self.net)
        backup = None
        if self.ema is not None and not (self.config.parallel == "fsdp" and self.info.distributed):
            backup = {k: v.detach().clone() for k, v in model.state_dict().items()}
            load_weights(model, self._ema_state(weights_state(model)), where="EMA")
        try:
            return (
                self._evaluate_lm(model)
                if self.valid.windows is not None
                else self._evaluate_pairs(model)
            )
        finally:
            if backup is not None:
                model.load_state_dict(backup)
            model.train()

    def _evaluate_lm(self, model: torch.nn.Module) -> tuple[float, float]:
        model.eval()
        shard = torch.from_numpy(
            self.valid.windows[self.info.rank :: self.info.world_size].astype(np.int64)
        )
        valid_mask = torch.ones_like(shard, dtype=torch.bool)
        with self._autocast():
            if self.config.objective == "ar":
                nll = autoregressive_nll(
                    model,
                    shard,
                    valid_mask,
                    bos_id=self.tokenizer.bos_id,
                    batch_size=self.config.batch_size,
                )
            else:
                generator = torch.Generator().manual_seed(
                    1234
                )  # the same draws at every evaluation
                nll, _ = diffusion_nll(
                    model,
                    self.process,
                    shard,
                    valid_mask,
                    samples=4,
                    batch_size=self.config.batch_size,
                    generator=generator,
                )
        total = distributed.all_reduce_sum(
            torch.tensor([nll.sum().item(), shard.numel()], device=self.device)
        )
        nats, tokens = float(total[0]), float(total[1])
        return nats / tokens, nats / max(1, self.valid.chars) / LN2

    def _evaluate_pairs(self, model: torch.nn.Module) -> tuple[float, float]:
        """ELBO of the fixed validation pairs, with fixed noise draws: (nats per target token, bits per clean target
        character). Target tokens include the learnt trailing PADs, so the length of the output is paid for."""
        model.eval()
        generator = torch.Generator(device=self.device).manual_seed(1234)
        total = torch.tensor([0.0, 0.0, float(self.valid.chars)], device=self.device)
        with self._autocast():
            for batch in self.valid.batches:
                for x0, kwargs in micro_batches(batch, self.config.grad_accum, self.device):
                    loss = self.objective(model, x0, generator=generator, **kwargs)
                    n = kwargs["attention_mask"].sum()
                    total[:2] += torch.stack([loss.float() * n, n.float()])
        nats, tokens, chars = distributed.all_reduce_sum(total).tolist()
        return nats / tokens, nats / max(1.0, chars) / LN2

    def _autocast(self):
        if self.autocast:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # -- the loop -----------------------------------------------------------------------------------------------
    def _update_time_fraction(self) -> None:
        """Share of the --max-minutes budget used, as rank 0 measures it (every rank must agree on it: it sets
        the learning rate and the last step). Refreshed at log steps only, where the loop syncs anyway."""
        if not self.config.max_minutes or self.started is None:
            return
        fraction = torch.tensor(
            [(time.monotonic() - self.started) / (60 * self.config.max_minutes)], device=self.device
        )
        if self.info.distributed:
            torch.distributed.broadcast(fraction, src=0)
        self.time_fraction = float(fraction)

    def train_step(self) -> torch.Tensor:
        config = self.config
        lr = learning_rate(self.step, config, time_fraction=self.time_fraction)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if hasattr(self.net, "anneal"):  # causal -> bidirectional attention of an adapted causal LM
            self.net.anneal(self.step)
        pieces = micro_batches(self.stream.next_batch(), self.config.grad_accum, self.device)
        micro = len(pieces)
        total = torch.zeros((), device=self.device)
        for i, (x0, kwargs) in enumerate(pieces):
            sync = i == micro - 1 or not hasattr(self.model, "no_sync")
            with contextlib.nullcontext() if sync else self.model.no_sync(), self._own_rng():
                with self._autocast():
                    loss = self.objective(self.model, x0, generator=self.noise, **kwargs)
                (loss / micro).backward()
            total += loss.detach() / micro
            prefix = kwargs["cond"].prefix if kwargs.get("cond") is not None else None
            self.tokens_seen += x0.numel() + (prefix.numel() if prefix is not None else 0)
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), config.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.net)
        self.step += 1
        return total

    def run(self, *, callbacks: Sequence[EvalCallback] = ()) -> TrainResult:
        """Train to `config.steps` or the time budget; OUT/metrics.jsonl and OUT/curves.png record the run.

        Args:
            callbacks: called with an `Evaluation` after each validation (hyperparameter search prunes with it).
        """
        from textdiffusion.training.progress import TrainProgress

        config = self.config
        self.net.train()
        bar = TrainProgress(
            total=config.steps, start=self.step, enabled=self.progress and self.info.is_main
        )
        self.started = time.monotonic()
        window_loss = torch.zeros((), device=self.device)
        window_start, window_steps, speed, last_loss = time.perf_counter(), 0, 0.0, float("nan")
        window_tokens = self.tokens_seen
        valid = None
        warned = False  # an explicit warm-up outlasting 10% of the time budget is reported once
        if self.info.is_main and warmup_warning(config):
            logger.warning(warmup_warning(config))
        log = None
        if self.info.is_main:
            logger.info(
                "training %d parameters on %s (%d processes) for %d steps of %d sequences",
                self.net.num_parameters(),
                self.device,
                self.info.world_size,
                config.steps,
                config.batch_size,
            )
        try:
            log = RunLog(
                self.out,
                start_step=self.step,
                enabled=self.info.is_main,
                tensorboard="tensorboard" in config.log,
            )
            with bar:
                while self.step < config.steps:
                    window_loss += self.train_step()
                    window_steps += 1
                    last = self.step == config.steps
                    row = {}  # this step's line of metrics.jsonl
                    if self.step % config.log_every == 0:
                        self._update_time_fraction()
                        last = last or self.time_fraction >= 1.0
                        if (
                            config.max_minutes
                            and not warned
                            and self.time_fraction >= WARMUP_SHARE
                            and self.step < warmup_steps(config)
                            and self.info.is_main
                        ):
                            warned = True
                            logger.warning(
                                "the warm-up (%d steps) is longer than %.0f%% of --max-minutes (step %d "
                                "now): leave --warmup-steps unset for the default",
                                warmup_steps(config),
                                100 * WARMUP_SHARE,
                                self.step,
                            )
                    if self.step % config.log_every == 0 or last:
                        mean = float(window_loss) / window_steps  # one device sync per log interval
                        if not math.isfinite(mean):
                            raise TrainingDiverged(self._diverged_message(mean))
                        elapsed = time.perf_counter() - window_start
                        tokens = (self.tokens_seen - window_tokens) * self.info.world_size
                        speed = tokens / max(elapsed, 1e-9)  # all ranks, padding included
                        last_loss = mean
                        lr = learning_rate(self.step - 1, config, time_fraction=self.time_fraction)
                        bar.update(self.step, loss=mean, speed=speed, lr=lr)
                        row.update(loss=mean, lr=lr, tokens_per_second=speed)
                        window_loss.zero_()
                        window_start, window_steps = time.perf_counter(), 0
                        window_tokens = self.tokens_seen
                    evaluated = None
                    if (config.eval_every and self.step % config.eval_every == 0) or last:
                        valid = evaluated = self.evaluate()
                        if valid is not None and self.info.is_main:
                            logger.info(
                                "step %d: valid %.4f nats/token, %.4f bits/char", self.step, *valid
                            )
                            bar.note(valid_bpc=valid[1])
                            row.update(valid_nll=valid[0], valid_bits_per_char=valid[1])
                    if row:
                        log.write({"step": self.step, **row})
                    if evaluated is not None:
                        for callback in callbacks:
                            callback(Evaluation(self.step, *evaluated))
                    if self.step % config.save_every == 0 or last:
                        self.save()
                    if last:
                        break
        except KeyboardInterrupt:
            if self.info.is_main:
                logger.warning(
                    "interrupted at step %d; saving a checkpoint before stopping", self.step
                )
            self.save()
            raise
        finally:
            if log is not None:
                log.close()
                self._plot_curves(log)
            if hasattr(self.stream, "close"):
                self.stream.close()
            distributed.cleanup()
        return TrainResult(
            out=self.out,
            step=self.step,
            loss=last_loss,
            valid_nll=valid[0] if valid else None,
            valid_bits_per_char=valid[1] if valid else None,
            tokens_per_second=speed,
            parameters=self.net.num_parameters(),
        )

    def _plot_curves(self, log: RunLog) -> None:
        """OUT/curves.png from OUT/metrics.jsonl, at the end and on any stop; a failure to draw is only logged
        (it must not hide why the run stopped)."""
        if not log.enabled or not log.path.exists():
            return
        try:
            plot_curves(log.path, self.out / CURVES_NAME)
        except Exception as exc:  # a plot is never worth hiding why the run stopped
            logger.warning("could not draw %s: %s", self.out / CURVES_NAME, exc)

    def _diverged_message(self, value: float) -> str:
        kept = find_checkpoints(self.out)
        where = (
            f"the last good checkpoint {kept[-1]} is kept"
            if kept
            else "no checkpoint had been written yet"
        )
        return (
            f"the training loss became {value} by step {self.step}; {where}. Lower --lr, raise --warmup-steps or "
            "check the data, then continue with --resume"
        )


def _rng_state(device: torch.device) -> dict[str, torch.Tensor | None]:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }


def _seeded_rng_state(seed: int, device: torch.device) -> dict[str, torch.Tensor | None]:
    """The global-RNG state that `torch.manual_seed(seed)` makes, without leaving it set."""
    cuda = device.type == "cuda"
    with torch.random.fork_rng(devices=[device] if cuda else [], device_type="cuda"):
        torch.manual_seed(seed)
        return _rng_state(device)
