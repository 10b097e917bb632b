"""DeepSpeed ZeRO for the training loop: the same :func:`redrobe.train.loop.train` across
processes and nodes.

ZeRO (Rajbhandari et al. 2020, "ZeRO: Memory Optimizations Toward Training Trillion
Parameter Models") partitions the optimizer state (stage 1), also the gradients
(stage 2) and also the parameters (stage 3) across data-parallel ranks; ZeRO-Offload
moves the optimizer state and step (and at stage 3 the parameters) to CPU memory.
Chosen in params.yaml::

    pretrain:
      distributed: {backend: deepspeed, zero_stage: 2, offload_optimizer: false, offload_params: false}

and launched with either launcher (rank and world size come from the launcher's env;
``--no_local_rank`` stops deepspeed appending a ``--local_rank`` option to the CLI)::

    deepspeed --num_gpus 2 --no_local_rank --module redrobe.cli pretrain ...
    torchrun --nproc-per-node 2 -m redrobe.cli pretrain ...

On a CPU-only machine DeepSpeed picks its CPU accelerator and the gloo backend.
The stage glue::

    dist = params.pretrain.distributed
    ctx = distributed_context(dist, env=os.environ)
    config = TrainConfig(..., device=ctx.device)            # cuda:<local_rank> on GPUs
    stepper = build_stepper(model, config, dist, ctx, batch_size=params.pretrain.batch_size)
    checkpointer = Checkpointer(root / f"rank-{ctx.rank}", ...)  # ZeRO state is per rank
    result = train(model, ctx.shard(batches), config, val, ctx.on_step(log), stepper,
                   checkpointer, resume)
    result = ctx.reduce_result(result)       # losses averaged over ranks (collective)
    with full_weights(stepper):              # ZeRO-3: gather the partitioned parameters
        if ctx.is_main:
            model.save_pretrained(out)       # plain HF weights, loadable without DeepSpeed

Data parallelism keeps the global batch of the single-process run: every rank takes
a disjoint, equal share of each step's ``(B, T + 1)`` batch, DeepSpeed averages the
gradients, so the update is the single-process one up to float summation order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from redrobe.config import Distributed
from redrobe.train.data import Batches as ScheduledBatches
from redrobe.train.data import rank_rows
from redrobe.train.loop import (
    Batches,
    StepRecord,
    TrainConfig,
    TrainResult,
    configure_optimizer,
)


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits: rank 0 of 1 for a plain run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        """Only rank 0 writes outputs, metrics and MLflow."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def shard(self, batches: Batches) -> Batches:
        """This rank's contiguous share of each step's batch (rows ``rank * B/W ...``); a
        :class:`redrobe.train.data.Batches` reads only those windows (``for_rank``)."""
        if not self.active:
            return batches
        if isinstance(batches, ScheduledBatches):
            return functools.partial(batches.for_rank, rank=self.rank, world_size=self.world_size)

        def local(step: int, micro: int) -> torch.Tensor:
            windows = batches(step, micro)
            return windows[rank_rows(len(windows), self.rank, self.world_size)]
        return local

    def mean(self, values: list[float]) -> list[float]:
        """Element-wise mean over ranks (one all-reduce); identity for one process."""
        if not self.active:
            return list(values)
        import torch.distributed as dist
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return (t / self.world_size).tolist()

    def global_record(self, record: StepRecord) -> StepRecord:
        """A step as the whole job saw it: mean loss over ranks, tokens summed.
        Collective: every rank must call it for the same step."""
        if not self.active:
            return record
        loss, tokens_per_s = self.mean([record.loss, record.tokens_per_s])
        return dataclasses.replace(record, loss=loss, tokens=record.tokens * self.world_size,
                                   tokens_per_s=tokens_per_s * self.world_size)

    def on_step(self, inner: Callable[[StepRecord], None] | None
                ) -> Callable[[StepRecord], None]:
        """Wrap a per-step callback: global record, called on rank 0 only."""
        def callback(record: StepRecord) -> None:
            record = self.global_record(record)
            if inner is not None and self.is_main:
                inner(record)
        return callback

    def reduce_result(self, result: TrainResult) -> TrainResult:
        """The result with every step's loss averaged over ranks (collective)."""
        if not self.active:
            return result
        losses = self.mean([r.loss for r in result.records])
        speeds = self.mean([r.tokens_per_s for r in result.records])
        records = [dataclasses.replace(r, loss=loss, tokens=r.tokens * self.world_size,
                                       tokens_per_s=speed * self.world_size)
                   for r, loss, speed in zip(result.records, losses, speeds)]
        return dataclasses.replace(result, records=records)


def distributed_context(distributed: Distributed, env: Mapping[str, str]) -> DistributedContext:
    """Join the process group the launcher set up (``RANK``/``WORLD_SIZE``/``LOCAL_RANK``
    and ``MASTER_ADDR``/``MASTER_PORT`` in ``env``, as deepspeed and torchrun export them).

    backend ``none`` gives the plain one-process context; ``deepspeed`` without a
    launcher env is an error (DeepSpeed itself needs ``LOCAL_RANK``).
    """
    if distributed.backend == "none":
        return DistributedContext()
    if "LOCAL_RANK" not in env or "WORLD_SIZE" not in env:
        raise ValueError("pretrain.distributed.backend is deepspeed but no launcher env "
                         "(LOCAL_RANK, WORLD_SIZE): start with `deepspeed --num_gpus N` or "
                         "`torchrun --nproc-per-node N` (N may be 1)")
    import deepspeed
    from deepspeed.accelerator import get_accelerator

    rank, world_size = int(env["RANK"]), int(env["WORLD_SIZE"])
    local_rank = int(env["LOCAL_RANK"])
    accelerator = get_accelerator()
    # gloo on CPU (ccl if oneCCL is installed), nccl on CUDA: DeepSpeed's accelerator picks
    deepspeed.init_distributed(dist_backend=accelerator.communication_backend_name(),
                               auto_mpi_discovery=False)
    if accelerator.device_name() != "cpu":
        accelerator.set_device(local_rank)
        device = accelerator.device_name(local_rank)
    else:
        device = "cpu"
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank,
                              device=device)


def ds_config(config: TrainConfig, distributed: Distributed, batch_size: int,
              world_size: int) -> dict[str, Any]:
    """The DeepSpeed JSON config for one pretraining run.

    ``batch_size`` is the global batch per micro-step (``pretrain.batch_size``); each
    rank gets ``batch_size / world_size`` rows of it. Gradient accumulation stays in the
    loop (``managed_gradient_accumulation: false``): ``backward`` only accumulates, the
    one ``step`` per optimizer step reduces and updates, so micro-batches are counted
    exactly as in the plain loop.
    """
    if batch_size % world_size:
        raise ValueError(f"pretrain.batch_size {batch_size} is not divisible by "
                         f"{world_size} data-parallel ranks")
    micro = batch_size // world_size
    zero: dict[str, Any] = {"stage": distributed.zero_stage}
    if distributed.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": False}
    if distributed.offload_params:
        zero["offload_param"] = {"device": "cpu", "pin_memory": False}
    if distributed.zero_stage == 3:
        # partitioned parameters are gathered for saving by full_weights(), not at every save
        zero["stage3_gather_16bit_weights_on_model_save"] = False
    return {
        "train_batch_size": micro * config.grad_accum * world_size,
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": config.grad_accum,
        "managed_gradient_accumulation": False,
        "gradient_clipping": config.grad_clip,       # 0 disables, as in the plain loop
        "zero_optimization": zero,
        # our torch AdamW (same decay groups as the plain loop) also when offloaded
        "zero_force_ds_cpu_optimizer": False,
        "bf16": {"enabled": config.precision == "bf16"},
        "fp16": {"enabled": config.precision == "fp16", "initial_scale_power": 16},
        "wall_clock_breakdown": False,
        "steps_per_print": 2 ** 31 - 1,              # the loop logs; DeepSpeed stays quiet
    }


class DeepSpeedStepper:
    """The loop's stepper on a ``deepspeed.initialize``-d engine.

    ``module`` is what the loop calls forward on (the engine: at ZeRO-3 its hooks
    gather each layer's parameters just in time). ``backward`` takes the loop's
    already ``1/grad_accum``-scaled micro-batch loss; ``step(lr)`` sets the learning
    rate, reduces gradients across ranks, clips (DeepSpeed ``gradient_clipping``),
    applies AdamW, zeroes the gradients and returns the pre-clip global gradient norm.
    """

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    @property
    def module(self) -> torch.nn.Module:
        return self.engine

    @property
    def zero_stage(self) -> int:
        return self.engine.zero_optimization_stage()

    def backward(self, loss: torch.Tensor) -> None:
        self.engine.backward(loss, scale_wrt_gas=False)

    def step(self, lr: float) -> float:
        for group in self.engine.optimizer.param_groups:
            group["lr"] = lr
        self.engine.step()
        norm = self.engine.get_global_grad_norm()
        return float(norm) if norm is not None else float("nan")

    def state_dict(self) -> dict[str, Any]:
        """This rank's share of the training state, as tensors and plain containers
        (``torch.load(..., weights_only=True)``): the full model weights and the AdamW
        moments of this rank's ZeRO partitions (hyper-parameters come from the config). Every
        rank saves (and later loads) its own, on the same world size. Collective at ZeRO-3 (the
        weights are gathered)."""
        with full_weights(self):
            weights = {k: v.detach().clone() for k, v in self.engine.module.state_dict().items()}
        base = self._base_optimizer()
        optimizer = [{k: v.detach().clone() if torch.is_tensor(v) else v
                      for k, v in base.state[p].items()} for p in self._partitions()]
        return {"module": weights, "optimizer": optimizer,
                "rank": self.engine.global_rank, "world_size": self.engine.world_size}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`: weights into the module, then the ZeRO fp32 master
        partition refreshed from them (exact in fp32; from the bf16/fp16 weights
        otherwise), then this rank's AdamW state. Collective at ZeRO-3."""
        where = (self.engine.global_rank, self.engine.world_size)
        if (state["rank"], state["world_size"]) != where:
            raise ValueError(f"training state of rank {state['rank']}/{state['world_size']} "
                             f"loaded on rank {where[0]}/{where[1]}")
        with full_weights(self, modify=True):
            if self.zero_stage < 3 or self.engine.global_rank == 0:
                self.engine.module.load_state_dict(state["module"])
        if hasattr(self.engine.optimizer, "refresh_fp32_params"):
            self.engine.optimizer.refresh_fp32_params()
        base, partitions = self._base_optimizer(), self._partitions()
        if len(partitions) != len(state["optimizer"]):
            raise ValueError("training state has another ZeRO partition layout")
        for param, saved in zip(partitions, state["optimizer"]):
            base.state[param] = {k: v.to(param.device) if torch.is_tensor(v) and v.dim() else v
                                 for k, v in saved.items()}

    def _partitions(self) -> list[torch.Tensor]:
        """The tensors AdamW updates on this rank: its flat fp32 ZeRO partitions (stage 3
        steps them one sub-group at a time, so the optimizer's own param_groups do not
        list them all), or the module's parameters without ZeRO."""
        optimizer = self.engine.optimizer
        for name in ("fp32_partitioned_groups_flat", "single_partition_of_fp32_groups"):
            if hasattr(optimizer, name):
                return list(getattr(optimizer, name))
        return [p for group in optimizer.param_groups for p in group["params"]]

    def _base_optimizer(self) -> torch.optim.Optimizer:
        """The torch AdamW under DeepSpeed's ZeRO wrapper (the wrapper's own state dict
        holds DeepSpeed objects that ``weights_only`` loading refuses)."""
        optimizer = self.engine.optimizer
        return optimizer if isinstance(optimizer, torch.optim.Optimizer) else optimizer.optimizer


def build_stepper(model: torch.nn.Module, config: TrainConfig, distributed: Distributed,
                  context: DistributedContext, batch_size: int) -> DeepSpeedStepper | None:
    """A DeepSpeed stepper for ``distributed.backend == "deepspeed"``, else None (the
    loop's plain AdamW). The optimizer is :func:`configure_optimizer`'s AdamW, so the
    hyper-parameters and weight-decay groups are those of the plain loop."""
    if distributed.backend == "none":
        return None
    import deepspeed

    model.to(context.device)
    optimizer = configure_optimizer(model, config)
    engine, _, _, _ = deepspeed.initialize(
        model=model, optimizer=optimizer,
        config=ds_config(config, distributed, batch_size, context.world_size))
    return DeepSpeedStepper(engine)


@contextlib.contextmanager
def full_weights(stepper: object | None, modify: bool = False) -> Iterator[None]:
    """Inside, the module holds its full parameters on every rank (a no-op unless the
    stepper runs ZeRO-3, whose parameters are partitioned). A collective: all ranks
    enter. With ``modify``, rank 0's in-place changes are broadcast on exit."""
    if not isinstance(stepper, DeepSpeedStepper) or stepper.zero_stage < 3:
        yield
        return
    import deepspeed

    params = list(stepper.engine.module.parameters())
    with deepspeed.zero.GatheredParameters(params, modifier_rank=0 if modify else None):
        yield
