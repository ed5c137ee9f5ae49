#!/usr/bin/python3
"""Checks the PyTorch reference itself before the C++ side is tested against it.

For each config (default: tiny and a non-cube one; add more with --model): runs `fixtures` and
`eval` through the CLI and checks that the float32 gradients are within 1e-5 of the float64 ones
(relative to each tensor's max), that eval of weights.safetensors reproduces the step-0 loss and
that the training losses fall. Independently of the CLI: the pos embed against the formula of
DESIGN.md, patchify against the Conv3d patch embedding, the mask against the noise ranks, and
the float64 gradients against central finite differences. Exits non-zero on any failure.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mae_reference as ref  # noqa: E402
import safetensors_io  # noqa: E402

NON_CUBE = ('{"model":{"crop":[16,32,24],"patch":[4,8,6],"dim":48,"depth":2,"heads":4,"decoder_dim":32,'
            '"decoder_depth":1,"decoder_heads":2,"mlp_ratio":4,"mask_ratio":0.75,"norm_pix_loss":true}}')
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def cli(*args):
    out = subprocess.run([sys.executable, os.path.join(HERE, "mae_reference.py"), *args],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def check_fixtures(model, workdir):
    out = os.path.join(workdir, str(abs(hash(model))))
    cli("fixtures", "--model", model, "--batch", "2", "--seed", "1", "--steps", "10", "--lr", "1e-3",
        "--warmup", "2", "--clip", "1.0", "--wd", "0.05", "--out", out)
    with open(os.path.join(out, "result.json")) as f:
        result = json.load(f)
    name = model if len(model) < 20 else "non-cube"
    grads, _ = safetensors_io.load(os.path.join(out, "grads.safetensors"))
    grads64, _ = safetensors_io.load(os.path.join(out, "grads64.safetensors"))
    worst = max(float((grads[n].double() - g).abs().max() / g.abs().max()) for n, g in grads64.items())
    check(grads.keys() == grads64.keys() and worst < 1e-5, f"{name}: fp32 grads vs fp64, worst {worst:.2e}")
    rel = abs(result["loss"] - result["loss64"]) / result["loss64"]
    check(rel < 1e-6, f"{name}: fp32 loss vs fp64, {rel:.2e}")
    evaluated = cli("eval", "--checkpoint", os.path.join(out, "weights.safetensors"),
                    "--volume", os.path.join(out, "volume.npy"), "--noise", os.path.join(out, "noise.npy"))
    check(abs(evaluated["loss"] - result["loss"]) <= 1e-6 * result["loss"] and
          evaluated["visible"] == result["len_keep"], f"{name}: eval {evaluated['loss']} vs {result['loss']}")
    losses = result["losses"]
    check(losses[-1] < 0.97 * losses[0], f"{name}: losses fall {losses[0]:.4f} -> {losses[-1]:.4f}")


def check_pos_embed():
    dim, grid = 64, [3, 4, 5]
    emb = ref.sincos_pos_embed_3d(dim, grid)[0].double()
    a = 2 * (dim // 6)
    for t in (0, 17, 59):
        iz, iy, ix = t // 20, (t // 5) % 4, t % 5
        row = []
        for c, p in ((a, iz), (a, iy), (dim - 2 * a, ix)):
            w = [10000.0 ** (-k / (c // 2)) for k in range(c // 2)]
            row += [math.sin(p * wk) for wk in w] + [math.cos(p * wk) for wk in w]
        check(torch.allclose(emb[1 + t], torch.tensor(row, dtype=torch.float64), atol=1e-7),
              f"pos_embed row of token {t}")
    check(bool((emb[0] == 0).all()), "pos_embed cls row is zero")


def check_patchify_and_mask():
    torch.manual_seed(0)
    model = ref.MaskedAutoencoder3D(json.loads(NON_CUBE)["model"]).double()
    volume = torch.randn(2, 16, 32, 24, dtype=torch.float64)
    w = model.patch_embed.proj.weight
    linear = model.patchify(volume) @ w.view(w.shape[0], -1).t() + model.patch_embed.proj.bias
    check(torch.allclose(model.patch_embed(volume), linear, atol=1e-10), "patchify C order matches Conv3d")
    noise = torch.rand(2, 64)
    _, mask, _ = model.random_masking(torch.zeros(2, 64, 1), noise, 16)
    ranks = noise.argsort(dim=1).argsort(dim=1)
    check(torch.equal(mask, (ranks >= 16).float()), "mask = 1 exactly for tokens whose noise rank >= len_keep")


def check_finite_differences():
    torch.manual_seed(0)
    model = ref.MaskedAutoencoder3D("tiny").double()
    gen = torch.Generator().manual_seed(0)
    volume = ref.synthetic_volume(2, [32, 32, 32], gen).double()
    noise = torch.rand(2, 64, generator=gen)
    model(volume, noise)[0].backward()
    worst, h = 0.0, 1e-5
    with torch.no_grad():
        for name, p in model.named_parameters():
            flat, grad = p.view(-1), p.grad.view(-1)
            for i in torch.randint(0, flat.numel(), (3,), generator=gen).tolist():
                saved = float(flat[i])
                flat[i] = saved + h
                plus = float(model(volume, noise)[0])
                flat[i] = saved - h
                minus = float(model(volume, noise)[0])
                flat[i] = saved
                scale = float(grad.abs().max()) + 1e-12
                worst = max(worst, abs((plus - minus) / (2 * h) - float(grad[i])) / scale)
    check(worst < 1e-6, f"tiny float64 grads vs central differences, worst {worst:.2e} of tensor max")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="extra config to check (repeatable)")
    args = parser.parse_args()
    check_pos_embed()
    check_patchify_and_mask()
    check_finite_differences()
    with tempfile.TemporaryDirectory() as workdir:
        for model in ["tiny", NON_CUBE] + (args.model or []):
            check_fixtures(model, workdir)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
