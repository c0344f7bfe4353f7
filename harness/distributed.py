"""Data-parallel training through torchrun and torch.distributed (DDP).

greenperf never launches ranks itself: ``greenperf run --nproc-per-node N``
re-executes the same command under ``torch.distributed.run`` (torchrun), and a
command started by torchrun directly works the same way. Each rank trains on a
disjoint slice of every global batch; the harness shards batches, so workloads
need no distributed code of their own.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from greenperf.errors import GreenperfError

DEFAULT_COLLECTIVE_TIMEOUT_S = 120.0


class RankFailure(GreenperfError):
    """A collective failed, or torchrun stopped us because another rank died.

    The process group is unusable afterwards, so the run is recorded as aborted
    and no further run starts.
    """

    def __init__(self, problem: str) -> None:
        super().__init__("distributed run", problem)


def _terminated(signum: int, frame: Any) -> None:
    raise RankFailure("stopped by torchrun (SIGTERM): another rank failed")


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_from_env(device: str, timeout_s: float = DEFAULT_COLLECTIVE_TIMEOUT_S
                  ) -> DistContext | None:
    """Join the process group torchrun set up (NCCL on GPUs, gloo on CPU)."""
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) < 1:
        return None
    import torch
    import torch.distributed as dist

    backend = "nccl" if device.startswith("cuda") else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=dt.timedelta(seconds=timeout_s))
        # torchrun stops the surviving ranks with SIGTERM when one dies; turning that into
        # an exception lets rank 0 record the aborted run before it exits.
        signal.signal(signal.SIGTERM, _terminated)
    local_rank = int(os.environ["LOCAL_RANK"])
    if device.startswith("cuda"):
        torch.cuda.set_device(local_rank)
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(),
                       local_rank=local_rank,
                       local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", "1")),
                       backend=backend)


def rank_device(device: str, ctx: DistContext | None) -> str:
    """Each rank of a CUDA run uses its local GPU."""
    if ctx is not None and device == "cuda":
        return f"cuda:{ctx.local_rank}"
    return device


def shutdown() -> None:
    """Leave the process group together: a rank tearing gloo down while a peer still
    uses it can abort the peer (SIGABRT)."""
    import torch.distributed as dist

    if dist.is_initialized():
        try:
            dist.barrier()
        except (RuntimeError, ValueError):
            pass  # a peer is already gone; nothing left to wait for
        dist.destroy_process_group()


def _guard(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except (RuntimeError, ValueError) as exc:  # gloo/nccl report peer loss and timeouts so
        raise RankFailure(f"collective failed, another rank died or hung ({exc})") from exc


def all_reduce_sum(values: Sequence[float]) -> list[float]:
    import torch
    import torch.distributed as dist

    t = torch.tensor(list(values), dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    _guard(dist.all_reduce, t)
    return [float(v) for v in t.cpu()]


def broadcast_flag(flag: bool) -> bool:
    """Rank 0's decision, on every rank, so all ranks stop at the same step."""
    import torch
    import torch.distributed as dist

    t = torch.tensor([1 if flag else 0], dtype=torch.int64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    _guard(dist.broadcast, t, 0)
    return bool(int(t.item()))


def gather_objects(obj: Any) -> list[Any]:
    import torch.distributed as dist

    out: list[Any] = [None] * dist.get_world_size()
    _guard(dist.all_gather_object, out, obj)
    return out


def shard_rows(value: Any, rank: int, world: int) -> Any:
    """Rank ``rank``'s contiguous slice of a tensor, or of each tensor in a tuple/list.

    Returns None when the value cannot be sharded row-wise (tensors of different
    lengths, or not tensors), so callers fall back to the full value.
    """
    items = value if isinstance(value, (tuple, list)) else (value,)
    lengths = {getattr(t, "shape", (None,))[0] if hasattr(t, "shape") else None for t in items}
    if len(lengths) != 1 or None in lengths:
        return None
    n = lengths.pop()
    per = -(-n // world)
    lo, hi = min(n, rank * per), min(n, (rank + 1) * per)
    sliced = [t[lo:hi] for t in items]
    return type(value)(sliced) if isinstance(value, (tuple, list)) else sliced[0]


def wrap_model(model: Any, ctx: DistContext, device: str) -> Any:
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [ctx.local_rank] if device.startswith("cuda") else None
    # Every trainable parameter must take part in the forward pass: a phase freezes
    # (requires_grad=False) what it does not train, e.g. a fine-tune's pre-training head.
    return DistributedDataParallel(model, device_ids=device_ids)


def unwrap(model: Any) -> Any:
    return getattr(model, "module", model)


def torchrun_command(argv: Sequence[str], nproc_per_node: int, nnodes: int,
                     rdzv_endpoint: str | None, node_rank: int | None) -> list[str]:
    """The same greenperf command, re-executed under torchrun."""
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc_per_node}",
           f"--nnodes={nnodes}"]
    if rdzv_endpoint:
        cmd += ["--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_endpoint}"]
        if node_rank is not None:
            cmd += [f"--node-rank={node_rank}"]
    else:
        cmd += ["--standalone"]
    return cmd + ["-m", "greenperf.cli", *argv]
