#!/usr/bin/python3
"""PyTorch reference of sfm's 3D ViT masked autoencoder (the llm.c way).

A plain, independent implementation of the "Model conventions (pinned)" of DESIGN.md. It writes
weights, inputs, noise, losses and gradients to files that the C++ CPU backend is tested against,
evaluates checkpoints written by the C++ side, and times PyTorch training steps for benchmarks.
Runs on Debian's PyTorch 1.13 (/usr/bin/python3) and on PyTorch 2.x unchanged.

Subcommands (see README.md): fixtures, eval, encode, export, bench.
"""
import argparse
import copy
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------------

_ARCH = {"dim": 768, "depth": 12, "heads": 12, "decoder_dim": 512, "decoder_depth": 8, "decoder_heads": 16}
NAMED_CONFIGS = {
    "tiny": {"crop": [32, 32, 32], "patch": [8, 8, 8], "dim": 64, "depth": 2, "heads": 4,
             "decoder_dim": 32, "decoder_depth": 1, "decoder_heads": 4},
    "small": {"crop": [64, 64, 64], "patch": [8, 8, 8], "dim": 192, "depth": 4, "heads": 3,
              "decoder_dim": 128, "decoder_depth": 2, "decoder_heads": 4},
    "base": {"crop": [128, 128, 128], "patch": [16, 16, 16], **_ARCH},
    "long": {"crop": [256, 256, 512], "patch": [16, 16, 16], **_ARCH},
    "seed": {"crop": [640, 640, 1024], "patch": [16, 16, 16], **_ARCH},
}
DEFAULTS = {"mlp_ratio": 4, "mask_ratio": 0.75, "norm_pix_loss": True}
KEYS = ["crop", "patch", "dim", "depth", "heads", "decoder_dim", "decoder_depth", "decoder_heads",
        "mlp_ratio", "mask_ratio", "norm_pix_loss"]


def expand_config(model):
    """Named config or dict -> full model config dict (all KEYS), validated."""
    if isinstance(model, str):
        if model not in NAMED_CONFIGS:
            raise ValueError(f"unknown model config {model!r} (named: {', '.join(NAMED_CONFIGS)})")
        model = NAMED_CONFIGS[model]
    unknown = set(model) - set(KEYS) - {"name"}  # "name" (sfm checkpoints) is informational
    if unknown:
        raise ValueError(f"unknown model config keys: {sorted(unknown)}")
    missing = [k for k in KEYS if k not in model and k not in DEFAULTS]
    if missing:
        raise ValueError(f"model config lacks {missing}")
    cfg = {k: model.get(k, DEFAULTS.get(k)) for k in KEYS}
    cfg["crop"], cfg["patch"] = [int(v) for v in cfg["crop"]], [int(v) for v in cfg["patch"]]
    if len(cfg["crop"]) != 3 or len(cfg["patch"]) != 3:
        raise ValueError("crop and patch need 3 entries (z, y, x)")
    if any(c <= 0 or p <= 0 or c % p for c, p in zip(cfg["crop"], cfg["patch"])):
        raise ValueError(f"patch {cfg['patch']} does not divide crop {cfg['crop']}")
    for d, h in (("dim", "heads"), ("decoder_dim", "decoder_heads")):
        if cfg[d] % 2 or cfg[d] % cfg[h]:
            raise ValueError(f"{d}={cfg[d]} must be even and divisible by {h}={cfg[h]}")
    if not 0 <= cfg["mask_ratio"] < 1:
        raise ValueError(f"mask_ratio {cfg['mask_ratio']} outside [0, 1)")
    return cfg


def parse_model_arg(arg):
    """--model: a config name, an inline JSON '{"model": ...}', or a path to such a JSON file."""
    if arg in NAMED_CONFIGS:
        return expand_config(arg)
    if arg.lstrip().startswith("{"):
        doc = json.loads(arg)
    else:
        with open(arg) as f:
            doc = json.load(f)
    if "model" not in doc:
        raise ValueError(f"{arg}: no 'model' entry")
    return expand_config(doc["model"])


def grid_of(cfg):
    return [c // p for c, p in zip(cfg["crop"], cfg["patch"])]


def tokens_of(cfg):
    return math.prod(grid_of(cfg))


def default_len_keep(cfg):
    return int(tokens_of(cfg) * (1 - cfg["mask_ratio"]))


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------

def sincos_1d(channels, positions):
    """[len(positions), channels]: sin(p*w_k) for k < c/2, then cos(p*w_k); w_k = 10000^(-k/(c/2))."""
    half = channels // 2
    omega = 10000.0 ** (-np.arange(half, dtype=np.float64) / half) if half else np.zeros(0)
    angles = np.outer(positions.astype(np.float64), omega)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def sincos_pos_embed_3d(dim, grid):
    """Fixed 3D positional embedding [1, N+1, dim] (float32); row 0 (cls) is zeros.

    Channel split (pinned): z and y get a = 2*floor(dim/6) channels each, x gets dim - 2a; parts are
    concatenated in the order z, y, x. Row 1+t is token t = (iz*gy + iy)*gx + ix. Computed in float64.
    """
    a = 2 * (dim // 6)
    gz, gy, gx = grid
    iz, iy, ix = np.meshgrid(np.arange(gz), np.arange(gy), np.arange(gx), indexing="ij")  # C order = t
    emb = np.concatenate([sincos_1d(a, iz.ravel()), sincos_1d(a, iy.ravel()),
                          sincos_1d(dim - 2 * a, ix.ravel())], axis=1)
    emb = np.concatenate([np.zeros((1, dim)), emb], axis=0)
    return torch.from_numpy(emb.astype(np.float32)).unsqueeze(0)


class PatchEmbed3D(nn.Module):
    def __init__(self, patch, dim):
        super().__init__()
        self.proj = nn.Conv3d(1, dim, kernel_size=patch, stride=patch)

    def forward(self, volume):  # [B, Z, Y, X] -> [B, N, D], tokens in (iz, iy, ix) C order
        return self.proj(volume.unsqueeze(1)).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, T, D = x.shape
        # qkv output channels split as [3, H, D/H]
        qkv = self.qkv(x).reshape(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # [B, H, T, D/H]
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, T, D))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # exact (erf) GELU
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x += attn(norm1(x)); x += mlp(norm2(x))."""

    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class MaskedAutoencoder3D(nn.Module):
    def __init__(self, config):
        super().__init__()
        cfg = self.config = expand_config(config)
        self.patch, self.grid = cfg["patch"], grid_of(cfg)
        D, Dd = cfg["dim"], cfg["decoder_dim"]
        self.patch_embed = PatchEmbed3D(cfg["patch"], D)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.register_buffer("pos_embed", sincos_pos_embed_3d(D, self.grid))  # fixed, in state_dict
        self.blocks = nn.ModuleList([Block(D, cfg["heads"], cfg["mlp_ratio"]) for _ in range(cfg["depth"])])
        self.norm = nn.LayerNorm(D, eps=1e-6)
        self.decoder_embed = nn.Linear(D, Dd)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, Dd))
        self.register_buffer("decoder_pos_embed", sincos_pos_embed_3d(Dd, self.grid))
        self.decoder_blocks = nn.ModuleList(
            [Block(Dd, cfg["decoder_heads"], cfg["mlp_ratio"]) for _ in range(cfg["decoder_depth"])])
        self.decoder_norm = nn.LayerNorm(Dd, eps=1e-6)
        self.decoder_pred = nn.Linear(Dd, math.prod(cfg["patch"]))
        self.initialize_weights()

    def initialize_weights(self):
        w = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))  # as a Linear [D, pz*py*px]
        nn.init.zeros_(self.patch_embed.proj.bias)
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def patchify(self, volume):
        """[B, Z, Y, X] -> [B, N, pz*py*px]; patch vectors in C order over (dz, dy, dx)."""
        B = volume.shape[0]
        (gz, gy, gx), (pz, py, px) = self.grid, self.patch
        x = volume.reshape(B, gz, pz, gy, py, gx, px).permute(0, 1, 3, 5, 2, 4, 6)
        return x.reshape(B, gz * gy * gx, pz * py * px)

    @staticmethod
    def random_masking(x, noise, len_keep):
        """Keeps the len_keep tokens with the smallest noise (stable ascending sort).

        Returns the kept tokens [B, len_keep, D], mask [B, N] (1 = hidden, in original token order)
        and ids_restore [B, N] (the inverse permutation of ids_shuffle).
        """
        B, N, D = x.shape
        ids_shuffle = torch.sort(noise, dim=1, stable=True)[1]
        ids_restore = torch.argsort(ids_shuffle, dim=1)  # a permutation: no ties
        ids_keep = ids_shuffle[:, :len_keep]
        x_kept = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(B, len_keep, D))
        mask = torch.ones(B, N, device=x.device)  # float32 even under autocast (exact 0/1 counts)
        mask[:, :len_keep] = 0
        mask = torch.gather(mask, 1, ids_restore)
        return x_kept, mask, ids_restore

    def forward_encoder(self, volume, noise, len_keep):
        x = self.patch_embed(volume) + self.pos_embed[:, 1:, :]  # pos embed added before masking
        x, mask, ids_restore = self.random_masking(x, noise, len_keep)
        cls = (self.cls_token + self.pos_embed[:, :1, :]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x), mask, ids_restore

    def forward_decoder(self, latent, ids_restore):
        x = self.decoder_embed(latent)  # [B, 1+len_keep, Dd]; row 0 is cls
        B, N, Dd = x.shape[0], ids_restore.shape[1], x.shape[2]
        # Unshuffle: the visible tokens (in ids_shuffle order) followed by N - len_keep mask tokens
        # form the shuffled sequence; gathering it at ids_restore puts token t back at position t.
        shuffled = torch.cat([x[:, 1:, :], self.mask_token.expand(B, N + 1 - x.shape[1], Dd)], dim=1)
        x = torch.cat([x[:, :1, :], torch.gather(shuffled, 1, ids_restore.unsqueeze(-1).expand(B, N, Dd))], dim=1)
        x = x + self.decoder_pos_embed
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:, :]  # cls output dropped

    def forward_loss(self, volume, pred, mask):
        """Mean over hidden tokens (whole batch) of the per-token MSE against the (normalised) patches."""
        target = self.patchify(volume)
        if self.config["norm_pix_loss"]:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)  # unbiased (n - 1)
            target = (target - mean) / (var + 1e-6) ** 0.5
        per_token = ((pred - target) ** 2).mean(dim=-1)
        return (per_token * mask).sum() / mask.sum()

    def forward(self, volume, noise, len_keep=None):
        """volume [B, Z, Y, X], noise [B, N] in [0, 1) -> (loss, pred [B, N, pz*py*px], mask [B, N])."""
        if len_keep is None:
            len_keep = default_len_keep(self.config)
        latent, mask, ids_restore = self.forward_encoder(volume, noise, len_keep)
        pred = self.forward_decoder(latent, ids_restore)
        return self.forward_loss(volume, pred, mask), pred, mask


# ---------------------------------------------------------------------------------------------
# Training pieces (pinned here; the C++ optimizer implements the same)
# ---------------------------------------------------------------------------------------------

BETAS, EPS = (0.9, 0.95), 1e-8


def make_optimizer(model, lr, wd):
    """torch AdamW; weight decay on tensors with >= 2 dims (cls/mask tokens included), none on the rest."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW([{"params": [p for p in params if p.ndim >= 2], "weight_decay": wd},
                              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
                             lr=lr, betas=BETAS, eps=EPS)


def lr_at(step, steps, base_lr, warmup):
    """Linear warmup over `warmup` steps, then half-cycle cosine down to min_lr = 0."""
    if step < warmup:
        return base_lr * (step + 1) / warmup
    return base_lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def clip_gradients(params, clip):
    """Returns the pre-clip global L2 norm; scales all grads by min(1, clip/(norm + 1e-6)) if clip > 0."""
    if clip > 0:
        return float(torch.nn.utils.clip_grad_norm_(params, clip))
    return float(torch.norm(torch.stack([p.grad.norm() for p in params])))


def synthetic_volume(batch, crop, gen):
    """Seismic-like [B, Z, Y, X] float32 (X is time): sparse reflectivity along dipping, gently folded
    horizons, convolved along X with a Ricker wavelet, plus 10 % noise; scaled to unit std."""
    Z, Y, X = crop
    z = torch.arange(Z, dtype=torch.float64).view(Z, 1, 1)
    y = torch.arange(Y, dtype=torch.float64).view(1, Y, 1)
    t = torch.arange(-12, 13, dtype=torch.float64)
    ricker = (1 - 2 * (math.pi * 0.08 * t) ** 2) * torch.exp(-(math.pi * 0.08 * t) ** 2)
    samples = []
    for _ in range(batch):
        dip_z, dip_y, fold, phase = torch.rand(4, generator=gen, dtype=torch.float64).tolist()
        shift = ((dip_z - 0.5) * 0.5 * z + (dip_y - 0.5) * 0.5 * y
                 + 4 * fold * torch.sin(2 * math.pi * z / Z + 6.3 * phase) * torch.cos(2 * math.pi * y / Y))
        margin = int(shift.abs().max()) + 1
        length = X + 2 * margin + 1
        refl = torch.randn(length, generator=gen, dtype=torch.float64)
        refl = refl * (torch.rand(length, generator=gen, dtype=torch.float64) < 0.15)
        index = (torch.arange(X, dtype=torch.float64) + shift + margin).round().long()  # [Z, Y, X]
        traces = F.conv1d(refl[index].reshape(-1, 1, X), ricker.view(1, 1, -1), padding=12).reshape(Z, Y, X)
        samples.append(traces + 0.1 * traces.std() * torch.randn(Z, Y, X, generator=gen, dtype=torch.float64))
    volume = torch.stack(samples)
    return (volume / volume.std()).float()


def check_len_keep(cfg, len_keep):
    n = tokens_of(cfg)
    len_keep = default_len_keep(cfg) if len_keep is None else len_keep
    if not 0 <= len_keep < n:
        raise ValueError(f"len_keep {len_keep} outside [0, {n}) (at least one token must be hidden)")
    return len_keep


def config_metadata(cfg):
    return {"config": json.dumps({"model": cfg})}


def grads_of(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters()}


# ---------------------------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------------------------

def cmd_fixtures(args):
    cfg = parse_model_arg(args.model)
    len_keep = check_len_keep(cfg, args.len_keep)
    device, B, N, K = torch.device(args.device), args.batch, tokens_of(cfg), args.steps
    if K < 1 or B < 1:
        raise ValueError("--steps and --batch must be >= 1")
    torch.manual_seed(args.seed)
    model = MaskedAutoencoder3D(cfg).to(device)
    gen = torch.Generator().manual_seed(args.seed)
    volume = synthetic_volume(B, cfg["crop"], gen)
    noise = torch.rand(K, B, N, generator=gen)
    os.makedirs(args.out, exist_ok=True)
    meta = config_metadata(cfg)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump({"model": cfg}, f, indent=2)
    np.save(os.path.join(args.out, "volume.npy"), volume.numpy())
    np.save(os.path.join(args.out, "noise.npy"), noise.numpy())
    safetensors_io.save(os.path.join(args.out, "weights.safetensors"), model.state_dict(), meta)
    volume, noise = volume.to(device), noise.to(device)

    # Step 0 in float64 from the same (float32-valued) weights and inputs: the near-exact answer.
    model64 = copy.deepcopy(model).double()
    loss64 = model64(volume.double(), noise[0], len_keep)[0]
    loss64.backward()
    safetensors_io.save(os.path.join(args.out, "grads64.safetensors"), grads_of(model64), meta)

    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(model, args.lr, args.wd)
    losses, lrs, grad_norms = [], [], []
    for s in range(K):
        opt.zero_grad(set_to_none=True)
        loss = model(volume, noise[s], len_keep)[0]
        loss.backward()
        if s == 0:  # raw gradients, before clipping
            safetensors_io.save(os.path.join(args.out, "grads.safetensors"), grads_of(model), meta)
        grad_norms.append(clip_gradients(params, args.clip))
        lrs.append(lr_at(s, K, args.lr, args.warmup))
        for group in opt.param_groups:
            group["lr"] = lrs[-1]
        opt.step()
        losses.append(loss.item())
    safetensors_io.save(os.path.join(args.out, "final_weights.safetensors"), model.state_dict(), meta)

    result = {"loss": losses[0], "loss64": loss64.item(), "len_keep": len_keep, "tokens": N,
              "losses": losses, "lrs": lrs, "grad_norms": grad_norms,
              "hyperparameters": {"model": args.model, "batch": B, "seed": args.seed, "steps": K,
                                  "lr": args.lr, "min_lr": 0.0, "warmup": args.warmup, "clip": args.clip,
                                  "weight_decay": args.wd, "betas": list(BETAS), "eps": EPS,
                                  "device": args.device, "torch": torch.__version__}}
    with open(os.path.join(args.out, "result.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({k: result[k] for k in ("loss", "loss64", "len_keep", "tokens", "losses")}))


def cmd_eval(args):
    tensors, metadata = safetensors_io.load(args.checkpoint)
    if args.model:
        cfg = parse_model_arg(args.model)
    elif "config" in metadata:
        cfg = parse_model_arg(metadata["config"])
    else:
        raise ValueError(f"{args.checkpoint}: no __metadata__ config; pass --model")
    len_keep = check_len_keep(cfg, args.len_keep)
    device = torch.device(args.device)
    model = MaskedAutoencoder3D(cfg)
    model.load_state_dict(tensors, strict=True)
    model.to(device)
    volume = torch.from_numpy(np.load(args.volume)).float()
    volume = volume.unsqueeze(0) if volume.ndim == 3 else volume
    noise = torch.from_numpy(np.load(args.noise)).float()
    noise = noise[0] if noise.ndim == 3 else noise  # [K, B, N] fixture noise: step 0's
    if list(volume.shape[1:]) != cfg["crop"] or volume.ndim != 4:
        raise ValueError(f"{args.volume}: shape {list(volume.shape)}, expected [B, {', '.join(map(str, cfg['crop']))}]")
    if list(noise.shape) != [volume.shape[0], tokens_of(cfg)]:
        raise ValueError(f"{args.noise}: shape {list(noise.shape)}, expected [{volume.shape[0]}, {tokens_of(cfg)}]")
    with torch.no_grad():
        loss = model(volume.to(device), noise.to(device), len_keep)[0]
    print(json.dumps({"loss": float(loss), "tokens": tokens_of(cfg), "visible": len_keep}))


def cmd_encode(args):
    """The encoder's final-norm token features [B, N, D] with every token visible, in grid order."""
    tensors, metadata = safetensors_io.load(args.checkpoint)
    if "config" not in metadata:
        raise ValueError(f"{args.checkpoint}: no __metadata__ config")
    cfg = parse_model_arg(metadata["config"])
    model = MaskedAutoencoder3D(cfg)
    model.load_state_dict(tensors, strict=True)
    volume = torch.from_numpy(np.load(args.volume)).float()
    volume = volume.unsqueeze(0) if volume.ndim == 3 else volume
    if list(volume.shape[1:]) != cfg["crop"] or volume.ndim != 4:
        raise ValueError(f"{args.volume}: shape {list(volume.shape)}, expected [B, {', '.join(map(str, cfg['crop']))}]")
    B, N = volume.shape[0], tokens_of(cfg)
    # Strictly increasing noise: the stable argsort is the identity, so len_keep = N keeps every
    # token in its original order (mask ratio 0).
    noise = torch.arange(N, dtype=torch.float32).div(N).expand(B, N)
    with torch.no_grad():
        latent, mask, _ = model.forward_encoder(volume, noise, N)
    assert float(mask.sum()) == 0
    np.save(args.out, latent[:, 1:, :].contiguous().numpy())  # cls row dropped
    print(json.dumps({"batch": B, "tokens": N, "dim": cfg["dim"], "out": args.out}))


def cmd_export(args):
    cfg = parse_model_arg(args.model)
    torch.manual_seed(args.seed)
    safetensors_io.save(args.out, MaskedAutoencoder3D(cfg).state_dict(), config_metadata(cfg))


def cmd_bench(args):
    cfg = parse_model_arg(args.model)
    device, B, N = torch.device(args.device), args.batch, tokens_of(cfg)
    torch.manual_seed(args.seed)
    model = MaskedAutoencoder3D(cfg).to(device)
    forward = model
    if args.compile:
        if not hasattr(torch, "compile"):
            raise ValueError(f"--compile needs torch.compile (PyTorch >= 2.0), this is {torch.__version__}")
        forward = torch.compile(model)
    opt = make_optimizer(model, 1e-4, 0.05)
    volume = torch.randn(B, *cfg["crop"], device=device)
    noise = torch.rand(args.steps + 2, B, N, device=device)
    len_keep = default_len_keep(cfg)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def step(s):
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=args.dtype == "bf16"):
            loss = forward(volume, noise[s], len_keep)[0]
        loss.backward()
        opt.step()

    for s in range(2):  # warm-up (and compilation)
        step(s)
    sync()
    start = time.perf_counter()
    for s in range(2, args.steps + 2):
        step(s)
    sync()
    seconds = time.perf_counter() - start
    print(json.dumps({
        "framework": "pytorch", "torch": torch.__version__, "model": args.model, "batch": B,
        "threads": torch.get_num_threads(), "device": str(device), "dtype": args.dtype, "compile": args.compile,
        "step_ms": 1000 * seconds / args.steps, "samples_per_s": B * args.steps / seconds,
        "tokens_per_s": B * N * args.steps / seconds,
        "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    threads_help = "torch.set_num_threads (0: leave as is)"
    model_help = "named config (tiny, small, base, long, seed), inline JSON '{\"model\": ...}' or a JSON file"

    p = sub.add_parser("fixtures", help="write weights, inputs, gradients and a short training run")
    p.add_argument("--model", required=True, help=model_help)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--clip", type=float, default=1.0, help="global-norm clip (<= 0: none)")
    p.add_argument("--wd", type=float, default=0.05)
    p.add_argument("--len-keep", type=int, help="visible tokens (default int(N * (1 - mask_ratio)))")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help=threads_help)
    p.add_argument("--out", required=True)
    p.set_defaults(run=cmd_fixtures)

    p = sub.add_parser("eval", help="loss of a safetensors checkpoint on a volume and noise")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--volume", required=True, help=".npy [Z, Y, X] or [B, Z, Y, X]")
    p.add_argument("--noise", required=True, help=".npy [B, N] or [K, B, N] (uses [0])")
    p.add_argument("--model", help=model_help + " (default: the checkpoint's __metadata__ config)")
    p.add_argument("--len-keep", type=int)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help=threads_help)
    p.set_defaults(run=cmd_eval)

    p = sub.add_parser("encode", help="encoder features [B, N, D] of a checkpoint, every token visible")
    p.add_argument("--checkpoint", required=True, help="safetensors with the model config in __metadata__")
    p.add_argument("--volume", required=True, help=".npy [Z, Y, X] or [B, Z, Y, X]")
    p.add_argument("--out", required=True, help=".npy float32 [B, N, D]: final-norm features, no cls row")
    p.add_argument("--threads", type=int, default=1, help=threads_help)
    p.set_defaults(run=cmd_encode)

    p = sub.add_parser("export", help="write a freshly initialised model as safetensors")
    p.add_argument("--model", required=True, help=model_help)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.set_defaults(run=cmd_export)

    p = sub.add_parser("bench", help="time training steps (forward, backward, AdamW)")
    p.add_argument("--model", required=True, help=model_help)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=0, help=threads_help)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=cmd_bench)

    args = parser.parse_args(argv)
    # fp32 means IEEE fp32 on CUDA too: no TF32 in matmuls or in the Conv3d patch embedding.
    torch.set_float32_matmul_precision("highest")
    torch.backends.cudnn.allow_tf32 = False
    # fixtures and eval default to one thread: Debian's torch uses the single-threaded netlib BLAS,
    # and extra OpenMP threads only spin on a machine that ctest shares with other tests.
    if getattr(args, "threads", 0):
        torch.set_num_threads(args.threads)
    try:
        args.run(args)
    except (ValueError, OSError, KeyError, RuntimeError) as e:
        print(f"mae_reference {args.command}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
