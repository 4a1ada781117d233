"""GPU memory of the chat server's model: a Bloom-560M-shaped model (random weights: no hub
here, same memory) in float16 on CUDA, as the GPU image runs it (EINDR_CHAT_DTYPE=auto ->
float16 on GPU), decoding full batches with a KV cache.

Needs only torch + transformers (the GPU machine's image has both):
    python3 deploy/tools/measure_gpu_chat.py
Prints GPU memory (allocated / reserved peaks) and host RSS, as JSON lines.
Sizes the `gpu` component (docs/operations.md "GPU").
"""

from __future__ import annotations

import json
import resource
import time

import torch
from transformers import BloomConfig, BloomForCausalLM

BLOOM_560M = {"hidden_size": 1024, "n_layer": 24, "n_head": 16, "vocab_size": 250880}


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    assert torch.cuda.is_available(), "no CUDA device"
    dev = torch.device("cuda")
    print(json.dumps({"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}))
    torch.manual_seed(0)
    with torch.device("meta"):
        model = BloomForCausalLM(BloomConfig(**BLOOM_560M))
    model = model.to_empty(device=dev).to(torch.float16)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.02)
    model.eval()
    torch.cuda.synchronize()
    weights = torch.cuda.memory_allocated() / 2**20
    print(json.dumps({"stage": "loaded", "weights_mib": round(weights), "host_rss_mib": round(rss_mib())}))
    # The server's limits: batch <= 8 (EINDR_CHAT_MAX_BATCH_SIZE), input <= 1024 tokens,
    # total <= 2048 tokens. Typical voice turn: a short prompt; worst case: both maxed.
    for batch, prompt, new in ((1, 64, 64), (8, 128, 128), (8, 1024, 1024)):
        torch.cuda.reset_peak_memory_stats()
        ids = torch.randint(0, BLOOM_560M["vocab_size"], (batch, prompt), device=dev)
        started = time.perf_counter()
        with torch.inference_mode():
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new,
                           do_sample=False, pad_token_id=0)
        torch.cuda.synchronize()
        print(json.dumps({
            "stage": "generate", "batch": batch, "prompt_tokens": prompt, "new_tokens": new,
            "peak_allocated_mib": round(torch.cuda.max_memory_allocated() / 2**20),
            "peak_reserved_mib": round(torch.cuda.max_memory_reserved() / 2**20),
            "host_rss_mib": round(rss_mib()),
            "host_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "seconds": round(time.perf_counter() - started, 2),
        }))


if __name__ == "__main__":
    main()
