"""Greedy generation speed: new tokens per second from a fixed prompt.

The prompt is encoded without special tokens and preceded by eos, the separator
that precedes every document in the training arrays, so the model sees a document
start as it did in training. Generation is forced to produce exactly
``new_tokens`` tokens (``min_new_tokens``), so the timing does not depend on when
the model happens to emit eos. One short untimed call warms up the kernels first.

    generation_speed(model, tokenizer, "The", new_tokens=64)
    # {"tokens_per_s": ..., "new_tokens": 64, "seconds": ..., "text": "The ..."}
"""

from __future__ import annotations

import time
from typing import Any

import torch


@torch.no_grad()
def generation_speed(model: Any, tokenizer: Any, prompt: str, new_tokens: int,
                     device: str = "cpu") -> dict[str, Any]:
    """Time greedy generation of ``new_tokens`` tokens after ``prompt``."""
    model.eval()
    ids = [tokenizer.eos_token_id, *tokenizer(prompt, add_special_tokens=False)["input_ids"]]
    input_ids = torch.tensor([ids], device=device)             # (1, P)
    kwargs = dict(attention_mask=torch.ones_like(input_ids), do_sample=False,
                  pad_token_id=tokenizer.pad_token_id)
    model.generate(input_ids, max_new_tokens=2, min_new_tokens=2, **kwargs)  # warm-up
    started = time.perf_counter()
    out = model.generate(input_ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, **kwargs)
    seconds = time.perf_counter() - started
    generated = out[0, input_ids.shape[1]:].tolist()             # (new_tokens,)
    return {"tokens_per_s": len(generated) / seconds, "new_tokens": len(generated),
            "seconds": seconds,
            "text": prompt + tokenizer.decode(generated, skip_special_tokens=True)}
