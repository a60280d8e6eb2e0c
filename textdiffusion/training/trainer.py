"""The training loop: one process or many under torchrun, resumable exactly, checkpoints written atomically.

step:  t = process.sample_t(...); xt = process.q_sample(x0, t); logits = model(xt, t); loss = mean(process.loss(...))
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch

from textdiffusion.checkpoint import (
    TOKENIZER_NAME,
    CheckpointConfig,
    load_pretrained,
    load_training_state,
    load_weights,
    read_config,
    unwrap,
    weights_state,
)
from textdiffusion.config import (
    TASKS,
    DataConfig,
    DenoiseConfig,
    ModelConfig,
    ProcessConfig,
    SampleConfig,
    TrainConfig,
)
from textdiffusion.data import BatchStream, Tokenizer, chunk_stream
from textdiffusion.data.captions import CaptionStream
from textdiffusion.data.pairs import LabelStream, LengthRule, ParallelPairStream
from textdiffusion.evaluation.elbo import LN2, autoregressive_nll, diffusion_nll
from textdiffusion.networks import build_network
from textdiffusion.processes import analog_bits, build_process
from textdiffusion.training import distributed
from textdiffusion.training.data import (
    load_caption_corpus,
    load_corpus,
    load_labelled_corpus,
    load_pair_corpus,
    load_parallel_corpus,
    micro_batches,
    pair_stream,
)
from textdiffusion.training.ema import EMA
from textdiffusion.training.finetune import finetune_config, load_init, start_lora
from textdiffusion.training.objectives import build_objective
from textdiffusion.training.optim import build_optimizer, learning_rate
from textdiffusion.training.state import (
    CheckpointState,
    TrainingDiverged,
    TrainingError,
    find_checkpoints,
)

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainResult:
    out: Path
    step: int
    loss: float
    valid_nll: float | None
    """Validation ELBO (or AR NLL) in nats per token, from the last evaluation."""
    valid_bits_per_char: float | None
    tokens_per_second: float
    parameters: int


class Trainer(CheckpointState):
    """Holds the state of one run; `run()` trains to `config.steps` (or `--max-minutes`) and returns a TrainResult."""

    def __init__(
        self,
        data: DataConfig,
        config: TrainConfig,
        *,
        out: str | Path,
        model: ModelConfig | None = None,
        process: ProcessConfig | None = None,
        sample: SampleConfig | None = None,
        resume: bool = False,
        init_from: str | None = None,
        task: str = "generate",
        denoise: DenoiseConfig | None = None,
        progress: bool = True,
    ) -> None:
        self.config, self.out, self.progress = config, Path(out), progress
        self.info = distributed.setup(config.device)
        self.device = self.info.device
        checkpoints = find_checkpoints(self.out)
        if checkpoints and not resume:
            raise TrainingError(
                f"{self.out} already holds a training run ({checkpoints[-1].name}); pass --resume to continue it "
                "or choose another --out"
            )
        self.resume_from = checkpoints[-1] if resume and checkpoints else None
        if resume and self.resume_from is None:
            logger.warning("--resume: no checkpoint in %s yet, starting a new run", self.out)

        torch.manual_seed(config.seed)  # identical initial weights on every rank
        init = None
        if self.resume_from is not None:
            ckpt = read_config(self.resume_from)
            tokenizer = Tokenizer.load(self.resume_from / TOKENIZER_NAME)
        elif init_from is not None:
            init = load_pretrained(init_from)
            ckpt, tokenizer = dataclasses.replace(init.config, task=task), init.tokenizer
            if sample is not None:
                ckpt.sample = sample
        else:
            ckpt, tokenizer = None, None
        max_len = ckpt.model.max_len if ckpt else (model or ModelConfig()).max_len
        seq_len = data.seq_len or max_len
        task = ckpt.task if ckpt is not None and self.resume_from is not None else task
        if task not in TASKS:
            raise TrainingError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
        if task != "style" and (data.targets or data.valid_targets):
            raise TrainingError(
                "--targets and --valid-targets are for --task style (aligned pairs)"
            )
        if task != "caption" and data.image_root:
            raise TrainingError("--image-root is for --task caption")
        if data.labels and (task != "style" or data.targets):
            raise TrainingError(
                "--labels is for attribute transfer (--task style without --targets): a file per label"
            )
        n_labels = 0
        if task == "caption":
            image_size = (ckpt.model if ckpt else (model or ModelConfig())).image_size
            if not image_size:
                raise TrainingError(
                    "--task caption needs a model that reads images: set --image-size (e.g. 64)"
                    + (f"; {init_from} has no image encoder" if init is not None else "")
                )
            pairs = load_caption_corpus(
                data,
                tokenizer=tokenizer,
                info=self.info,
                out=self.out,
                max_len=max_len,
                image_size=image_size,
                # a resumed run keeps its caption length; a new or fine-tuning run takes its captions' longest
                length=ckpt.task_config["length"] if self.resume_from is not None else None,
            )
            self.tokenizer = pairs.tokenizer
            task_config = {"length": pairs.length}
        elif task == "style" and data.labels:
            if self.resume_from is not None and ckpt.task_config.get("labels") != list(data.labels):
                raise TrainingError(
                    f"--labels {list(data.labels)} differ from the run's {ckpt.task_config.get('labels')}"
                )
            pairs = load_labelled_corpus(
                data,
                tokenizer=tokenizer,
                info=self.info,
                out=self.out,
                max_len=max_len,
                # a resumed run keeps its line length; a new or fine-tuning run takes its lines' longest
                length=ckpt.task_config["length"] if self.resume_from is not None else None,
            )
            self.tokenizer = pairs.tokenizer
            n_labels = len(pairs.labels)
            grows = init is not None and ckpt.model.n_labels == 0  # fine-tuning adds the labels
            if ckpt is not None and ckpt.model.n_labels != n_labels and not grows:
                raise TrainingError(
                    f"the model has {ckpt.model.n_labels} labels, and --labels gives {n_labels}"
                )
            task_config = {"labels": pairs.labels, "length": pairs.length}
        elif task == "style":
            pairs = load_parallel_corpus(
                data,
                tokenizer=tokenizer,
                info=self.info,
                out=self.out,
                max_len=max_len,
                # a resumed run keeps its length rule; a new or fine-tuning run fits one to its pairs
                length=LengthRule(**ckpt.task_config) if self.resume_from is not None else None,
            )
            self.tokenizer = pairs.tokenizer
            task_config = dataclasses.asdict(pairs.length)
        elif task == "denoise":
            denoise = denoise or DenoiseConfig(**(ckpt.task_config if ckpt else {}))
            pairs = load_pair_corpus(
                data,
                tokenizer=tokenizer,
                info=self.info,
                out=self.out,
                max_chars=denoise.max_chars,
                words=denoise.words,
            )
            self.tokenizer = pairs.tokenizer
            task_config = dataclasses.asdict(denoise)
        else:
            task_config = {}
            corpus = load_corpus(
                data, tokenizer=tokenizer, info=self.info, out=self.out, seq_len=seq_len
            )
            self.tokenizer = corpus.tokenizer
        if ckpt is None:
            model_config = dataclasses.replace(
                model or ModelConfig(), vocab_size=self.tokenizer.vocab_size, n_labels=n_labels
            )
            if config.objective == "ar":
                model_config = dataclasses.replace(model_config, causal=True)
            process = process or ProcessConfig()
            if process.name == "gaussian":  # the network reads the codes of the ids
                model_config = dataclasses.replace(
                    model_config, input_dim=analog_bits(self.tokenizer.vocab_size)
                )
            ckpt = CheckpointConfig(
                model=model_config,
                process=process,
                sample=sample or SampleConfig(),
                objective=config.objective,
                task=task,
                task_config=task_config,
            )
        elif init is not None:
            # fine-tuning: record this run's task settings (noise rates, length rule), not the original's
            ckpt = dataclasses.replace(ckpt, task_config=task_config)
        if ckpt.objective != config.objective:
            raise TrainingError(
                f"--objective {config.objective} does not match the checkpoint's objective {ckpt.objective}"
            )
        self.ckpt_config = ckpt
        self.seq_len = data.seq_len or ckpt.model.max_len
        if self.seq_len > ckpt.model.max_len:
            raise TrainingError(
                f"--seq-len {self.seq_len} exceeds the model's max length {ckpt.model.max_len}"
            )

        if init is not None:
            ckpt = self.ckpt_config = finetune_config(ckpt, config, n_labels=n_labels)
        self.net = build_network(ckpt.model).to(self.device)
        if init is not None:
            load_init(self.net, init.model)
        if config.lora_rank and self.resume_from is None:
            self.net, self.ckpt_config = start_lora(self.net, ckpt, config, base=init_from)
        self.process = build_process(
            ckpt.process,
            mask_id=self.tokenizer.mask_id,
            vocab_size=self.tokenizer.vocab_size,
            special_ids=self.tokenizer.special_ids,
        )
        self.objective = build_objective(
            config.objective,
            process=self.process,
            bos_id=self.tokenizer.bos_id,
            # a gain on CPUs; on an H200 the row selection's host-device syncs cost more than it saves (0.92-0.99x,
            # `bench/profile_step.py --device cuda`), and data-dependent shapes would break a compiled graph
            sparse_logits=self.device.type == "cpu" and not config.compile,
        )
        self.model = distributed.wrap(self.net, self.info, parallel=config.parallel)
        if config.compile:
            self.model = torch.compile(self.model)
            self.objective.compile()
        self.optimizer = build_optimizer(self.net, config)
        self.ema = EMA(self.net, decay=config.ema_decay) if config.ema_decay > 0 else None
        placement = dict(
            batch_size=config.batch_size, rank=self.info.rank, world_size=self.info.world_size
        )
        if task == "denoise":
            streams = dict(
                tokenizer=self.tokenizer,
                max_tokens=ckpt.model.max_len,
                word_counts=pairs.word_counts,
                **placement,
            )
            self.stream = pair_stream(
                pairs.train, denoise, seed=config.seed, workers=denoise.workers, **streams
            )
            valid = (
                pair_stream(pairs.valid, denoise, seed=config.seed + 1, **streams)
                if pairs.valid
                else None
            )
        elif task in ("style", "caption"):
            fixed = dict(pad_id=self.tokenizer.pad_id, length=pairs.length, **placement)

            def fixed_stream(items, seed: int, train: bool):
                """Training batches (label dropout, random crops) or validation ones of fixed items."""
                if task == "caption":
                    return CaptionStream(
                        pairs.images,
                        items,
                        image_size=ckpt.model.image_size,
                        augment=train,
                        seed=seed,
                        **fixed,
                    )
                if data.labels:
                    dropout = data.label_dropout if train else 0.0
                    return LabelStream(
                        items, n_labels=n_labels, dropout=dropout, seed=seed, **fixed
                    )
                return ParallelPairStream(items, seed=seed, **fixed)

            self.stream = fixed_stream(pairs.train, config.seed, True)
            valid = fixed_stream(pairs.valid, config.seed + 1, False) if pairs.valid else None
        if task in ("denoise", "style", "caption"):
            self.valid = [valid.next_batch() for _ in range(config.eval_batches)] if valid else []
            # clean characters of this rank's targets (decode drops the PADs): bits/char for any tokenizer
            self.valid_chars = sum(
                len(self.tokenizer.decode(row))
                for batch in self.valid
                for row in batch["target"].tolist()
            )
        else:
            self.stream = BatchStream(
                corpus.train, seq_len=self.seq_len, seed=config.seed, **placement
            )
            self.valid = chunk_stream(corpus.valid, self.seq_len)[
                : config.eval_batches * config.batch_size
            ]
            self.valid_chars = (
                len(self.tokenizer.decode(self.valid.reshape(-1).tolist()))
                if len(self.valid)
                else 0
            )
        self.noise = torch.Generator(device=self.device).manual_seed(
            config.seed * 1000 + self.info.rank
        )
        torch.manual_seed(config.seed * 1000 + self.info.rank)  # dropout differs between ranks
        self.step = 0
        self.started: float | None = None
        self.time_fraction = 0.0  # of the --max-minutes budget, as of the last log step
        self.tokens_seen = 0  # on this rank, prefix and padding included (for the tokens/s display)
        if self.resume_from is not None:
            self._load_state(load_training_state(self.resume_from))
        self.autocast = self.device.type == "cuda" and config.precision in ("auto", "bf16")

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
                self._evaluate_pairs(model)
                if isinstance(self.valid, list)
                else self._evaluate_lm(model)
            )
        finally:
            if backup is not None:
                model.load_state_dict(backup)
            model.train()

    def _evaluate_lm(self, model: torch.nn.Module) -> tuple[float, float]:
        model.eval()
        shard = torch.from_numpy(
            self.valid[self.info.rank :: self.info.world_size].astype(np.int64)
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
        return nats / tokens, nats / max(1, self.valid_chars) / LN2

    def _evaluate_pairs(self, model: torch.nn.Module) -> tuple[float, float]:
        """ELBO of the fixed validation pairs, with fixed noise draws: (nats per target token, bits per clean target
        character). Target tokens include the learnt trailing PADs, so the length of the output is paid for."""
        model.eval()
        generator = torch.Generator(device=self.device).manual_seed(1234)
        total = torch.tensor([0.0, 0.0, float(self.valid_chars)], device=self.device)
        with self._autocast():
            for batch in self.valid:
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
            with contextlib.nullcontext() if sync else self.model.no_sync():
                with self._autocast():
                    loss = self.objective(self.model, x0, generator=self.noise, **kwargs)
                (loss / micro).backward()
            total += loss.detach() / micro
            prefix = kwargs["cond"].prefix if kwargs else None
            self.tokens_seen += x0.numel() + (prefix.numel() if prefix is not None else 0)
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), config.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.net)
        self.step += 1
        return total

    def run(self) -> TrainResult:
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
            with bar:
                while self.step < config.steps:
                    window_loss += self.train_step()
                    window_steps += 1
                    last = self.step == config.steps
                    if self.step % config.log_every == 0:
                        self._update_time_fraction()
                        last = last or self.time_fraction >= 1.0
                    if self.step % config.log_every == 0 or last:
                        mean = float(window_loss) / window_steps  # one device sync per log interval
                        if not math.isfinite(mean):
                            raise TrainingDiverged(self._diverged_message(mean))
                        elapsed = time.perf_counter() - window_start
                        tokens = (self.tokens_seen - window_tokens) * self.info.world_size
                        speed = tokens / max(elapsed, 1e-9)  # all ranks, padding included
                        last_loss = mean
                        bar.update(
                            self.step,
                            loss=mean,
                            speed=speed,
                            lr=learning_rate(
                                self.step - 1, config, time_fraction=self.time_fraction
                            ),
                        )
                        window_loss.zero_()
                        window_start, window_steps = time.perf_counter(), 0
                        window_tokens = self.tokens_seen
                    if (config.eval_every and self.step % config.eval_every == 0) or last:
                        valid = self.evaluate()
                        if valid is not None and self.info.is_main:
                            logger.info(
                                "step %d: valid %.4f nats/token, %.4f bits/char", self.step, *valid
                            )
                            bar.note(valid_bpc=valid[1])
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


def train(data: DataConfig, config: TrainConfig, *, out: str | Path, **kwargs) -> TrainResult:
    """Train a model (see `Trainer` for the arguments) and return its TrainResult."""
    return Trainer(data, config, out=out, **kwargs).run()
