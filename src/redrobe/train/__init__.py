"""Training: lr schedule, precision choice, curriculum batches, the loop, the loss curve.

Used by the pretrain stage (a fresh LLaMA on the curriculum buckets) and the lora
stage (a peft model on one slice's token buffer); see :mod:`redrobe.train.loop`.
"""

from redrobe.train.checkpoint import Checkpointer
from redrobe.train.curve import write_curve
from redrobe.train.data import (
    CurriculumBatches,
    Phase,
    ShuffledBatches,
    SmoothBatches,
    curriculum_plan,
    eval_windows,
    gather,
    lane_starts,
    make_batches,
)
from redrobe.train.loop import (
    StepRecord,
    TrainConfig,
    TrainResult,
    configure_optimizer,
    estimate_loss,
    next_token_loss,
    train,
    train_on_array,
)
from redrobe.train.mfu import flops_per_token, measure_peak_flops, mfu
from redrobe.train.precision import (
    autocast,
    choose_precision,
    parse_cpu_flags,
    select_device,
    torch_setup,
)
from redrobe.train.schedule import lr_at

__all__ = [
    "Checkpointer", "CurriculumBatches", "Phase", "ShuffledBatches", "SmoothBatches",
    "StepRecord", "TrainConfig", "TrainResult", "autocast",
    "choose_precision", "configure_optimizer", "curriculum_plan", "estimate_loss",
    "eval_windows", "flops_per_token", "make_batches", "measure_peak_flops", "mfu", "gather",
    "lane_starts", "lr_at", "next_token_loss", "parse_cpu_flags",
    "select_device", "torch_setup", "train", "train_on_array", "write_curve",
]
