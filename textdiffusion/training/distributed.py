"""torchrun integration: process-group set-up, model wrapping (DDP or FSDP2), and rank-0-only side effects.

Nothing here is home-made distribution: `torchrun` starts the processes and sets RANK/WORLD_SIZE/LOCAL_RANK;
PyTorch's DDP or `fully_shard` does the communication (nccl on GPU, gloo on CPU).
"""

from __future__ import annotations

import dataclasses
import logging
import os

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: str = "auto") -> DistInfo:
    """Join the process group when started by torchrun; pick this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"--device {device}: CUDA is not available (use --device cpu)")
        if world_size > 1 or device == "cuda":
            device = f"cuda:{local_rank}"  # set_device and the RNG state calls need an index
        torch.cuda.set_device(torch.device(device))
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend=backend)
        logger.info("rank %d/%d joined the %s process group", rank, world_size, backend)
    return DistInfo(
        rank=rank, local_rank=local_rank, world_size=world_size, device=torch.device(device)
    )


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    if dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def wrap(model: torch.nn.Module, info: DistInfo, *, parallel: str) -> torch.nn.Module:
    """Wrap the network for data parallelism; the model code itself stays unaware of it."""
    if not info.distributed:
        return model
    if parallel == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [info.device.index] if info.device.type == "cuda" else None
        # the only buffers (the rotary tables) are computed from the config, the same on every rank: no broadcast
        return DistributedDataParallel(model, device_ids=device_ids, broadcast_buffers=False)
    if parallel == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for block in model.blocks:
            fully_shard(block)
        fully_shard(model)
        return model
    raise ValueError(f"unknown --parallel {parallel!r}; choose ddp or fsdp")
