"""PyTorch's fused attention (F.scaled_dot_product_attention: cuDNN / flash backends) at the shapes
of the sfm CUDA attention benchmark, in bf16 on the GPU. Prints one JSON line per shape with the
same FLOP convention (forward 4·B·H·N²·d, backward 2.5× forward), so the two can be compared as a
ratio on the same card:

    python3 benchmarks/attention_torch.py
"""
import json
import time

import torch
import torch.nn.functional as F

SHAPES = {"encoder_base": (64, 12, 129, 64), "decoder_base": (64, 16, 513, 32)}


def bench(batch, heads, tokens, dim, repeats=20):
    def make():
        return torch.randn(batch, heads, tokens, dim, device="cuda", dtype=torch.bfloat16, requires_grad=True)

    q, k, v = make(), make(), make()
    grad = torch.randn_like(q)
    for _ in range(3):
        F.scaled_dot_product_attention(q, k, v).backward(grad)
    torch.cuda.synchronize()
    forward = backward = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        out = F.scaled_dot_product_attention(q, k, v)
        torch.cuda.synchronize()
        middle = time.perf_counter()
        out.backward(grad)
        torch.cuda.synchronize()
        forward += middle - start
        backward += time.perf_counter() - middle
    flops = 4.0 * batch * heads * tokens * tokens * dim
    fwd_ms, bwd_ms = forward / repeats * 1e3, backward / repeats * 1e3
    return {"fwd_ms": fwd_ms, "bwd_ms": bwd_ms, "fwd_tflops": flops / fwd_ms * 1e-9,
            "bwd_tflops": 2.5 * flops / bwd_ms * 1e-9, "fwd_bwd_tflops": 3.5 * flops / (fwd_ms + bwd_ms) * 1e-9}


if __name__ == "__main__":
    for name, (b, h, n, d) in SHAPES.items():
        print(json.dumps({"bench": "attention", "shape": name, "impl": "torch_sdpa", "torch": torch.__version__,
                          "dtype": "bf16", "B": b, "H": h, "N": n, "d": d, **bench(b, h, n, d)}))
