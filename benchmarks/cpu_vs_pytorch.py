"""Driver of benchmarks/cpu_vs_pytorch.sh (run it through that script, which sets up PyTorch).

For each CONFIG:BATCH and each of --rounds rounds, runs back to back: sfm's bench_train_step,
the PyTorch peer eager, the peer under torch.compile; all with the same OMP_NUM_THREADS. Each run is
its own process, so its peak resident memory (ru_maxrss from wait4) is its own. Prints every run's
JSON line (with "peak_rss_mib" added), then one summary line per config: medians of samples/s, the
ratios sfm / eager and sfm / compiled, and sfm / the best peer variant. Standard library only.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, threads):
    """(parsed last JSON line of stdout, peak RSS in MiB) of one child process."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with tempfile.TemporaryFile("w+") as out_file, tempfile.TemporaryFile("w+") as err_file:
        proc = subprocess.Popen(cmd, stdout=out_file, stderr=err_file, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)  # reaps it here, with its own rusage
        proc.returncode = os.waitstatus_to_exitcode(status)
        out_file.seek(0), err_file.seek(0)
        out, err = out_file.read(), err_file.read()
    if proc.returncode != 0:
        sys.exit(f"cpu_vs_pytorch: {' '.join(cmd)} failed:\n{err.strip()}")
    lines = [l for l in out.splitlines() if l.startswith("{")]
    if not lines:
        sys.exit(f"cpu_vs_pytorch: {' '.join(cmd)} printed no JSON:\n{out}\n{err}")
    return json.loads(lines[-1]), usage.ru_maxrss / 1024.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--torch-python", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("configs", nargs="*", default=["small:8", "tiny:8", "base:2"])
    a = ap.parse_args()
    peer = os.environ.get("SFM_PEER", os.path.join(ROOT, "..", "shared", "baselines", "mae3d_ref.py"))
    if not os.path.isfile(peer):
        sys.exit(f"cpu_vs_pytorch: the PyTorch peer {peer} is missing (set SFM_PEER=path/to/mae3d_ref.py)")
    for spec in a.configs:
        config, _, batch = spec.partition(":")
        batch = batch or "8"
        variants = {
            "sfm": [os.path.join(ROOT, "build", "bin", "bench_train_step"), "--config", config, "--batch", batch,
                    "--steps", str(a.steps), "--threads", str(a.threads)],
            "eager": [a.torch_python, peer, "--cfg", config, "--device", "cpu", "--batch", batch,
                      "--steps", str(a.steps), "--warm", "2"],
        }
        variants["compiled"] = variants["eager"] + ["--compile"]
        rates = {k: [] for k in variants}
        rss = {k: [] for k in variants}
        for r in range(a.rounds):
            for name, cmd in variants.items():
                result, peak = run(cmd, a.threads)
                result.update({"variant": name, "round": r, "threads": a.threads, "peak_rss_mib": round(peak, 1)})
                print(json.dumps(result), flush=True)
                rates[name].append(result["samples_per_s"])
                rss[name].append(peak)
        med = {k: statistics.median(v) for k, v in rates.items()}
        best_peer = max(med["eager"], med["compiled"])
        print(json.dumps({
            "summary": config, "batch": int(batch), "threads": a.threads, "rounds": a.rounds,
            "samples_per_s": {k: round(v, 2) for k, v in med.items()},
            "samples_per_s_range": {k: [round(min(v), 2), round(max(v), 2)] for k, v in rates.items()},
            "peak_rss_mib": {k: round(max(v), 1) for k, v in rss.items()},
            "sfm_over_eager": round(med["sfm"] / med["eager"], 3),
            "sfm_over_compiled": round(med["sfm"] / med["compiled"], 3),
            "sfm_over_best_peer": round(med["sfm"] / best_peer, 3)}), flush=True)


if __name__ == "__main__":
    main()
