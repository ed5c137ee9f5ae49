#!/usr/bin/env bash
# The I/O read benchmark end to end: bench_io_read (sfm: local, and over HTTP from nginx on loopback
# with 1, 8 and 64 requests in flight) and benchmarks/io_read_peers.py (zarr-python 3, zarrs,
# TensorStore) on the same stores and boxes, in one run on this machine. Prints both JSON objects,
# then one with the ratios and the issue's targets: sfm ≥ 5× zarr-python and ≥ 1× TensorStore
# locally; HTTP at 64 in flight within 20 % of local; and each HTTP run's transfer limit (its byte
# ranges replayed over the same nginx, nothing decoded).
#
#   benchmarks/io_compare.sh [BUILD_DIR=build] [WORK_DIR=BUILD_DIR/io-bench] [BOXES=24]
#
# SERVER_CPUS=LIST (for taskset, e.g. 1) runs nginx on those CPUs alone and every reader (sfm local
# and HTTP, the peers) on the others, as if the server were another machine: on a small machine
# the server otherwise takes the cores the client decodes on. Every ratio then compares readers
# on the same client CPUs.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
work=$(realpath -m "${2:-$build/io-bench}")
boxes=${3:-24}
python=.venv/bin/python
mkdir -p "$work/data" "$work/nginx"

# nginx serving the stores on a free loopback port, stopped on exit.
port=$($python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/nginx/nginx.conf" <<CONF
daemon off;
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 100000;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server { listen 127.0.0.1:$port; root $work/data; }
}
CONF
server=() client=()
if [ -n "${SERVER_CPUS:-}" ]; then
  all=$(seq -s, 0 $(($(nproc --all) - 1)))
  rest=$($python -c 'import sys; a, s = sys.argv[1].split(","), set(sys.argv[2].split(",")); print(",".join(c for c in a if c not in s))' "$all" "$SERVER_CPUS")
  [ -n "$rest" ] || { echo "io_compare.sh: SERVER_CPUS=$SERVER_CPUS leaves no CPU for the readers" >&2; exit 2; }
  server=(taskset -c "$SERVER_CPUS") client=(taskset -c "$rest")
fi
"${server[@]}" /usr/sbin/nginx -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" -p "$work/nginx" &
nginx_pid=$!
trap 'kill $nginx_pid 2>/dev/null || true; wait $nginx_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
  sleep 0.1
done

sfm_json=$("${client[@]}" "$build/bin/bench_io_read" --dir "$work/data" --boxes "$boxes" --http "http://127.0.0.1:$port")
peers_json=$("${client[@]}" $python benchmarks/io_read_peers.py --dir "$work/data")
echo "$sfm_json"
echo "$peers_json"
$python - "$sfm_json" "$peers_json" <<'PY'
import json, os, sys
sfm, peers = json.loads(sys.argv[1]), json.loads(sys.argv[2])
out = {"benchmark": "io_compare", "cpus": sfm["cpus"], "server_cpus": os.environ.get("SERVER_CPUS") or "shared",
       "box": sfm["box"], "boxes": sfm["boxes"], "stores": {}}
for store, r in sfm["results"].items():
    local = r["local"]["mb_per_s"]
    s = {"sfm_local_mb_per_s": round(local, 1)}
    for name, results in peers["results"].items():
        peer = results[store]
        s[f"{name}_mb_per_s"] = round(peer["mb_per_s"], 1)
        s[f"ratio_sfm_over_{name}"] = round(local / peer["mb_per_s"], 2)
        assert abs(peer["checksum"] - r["local"]["checksum"]) <= 1e-6 * max(1.0, abs(r["local"]["checksum"])), \
            f"{name} read different values from {store}"
    for key in ("http_1", "http_8", "http_64"):
        if key in r:
            s[f"sfm_{key}_mb_per_s"] = round(r[key]["mb_per_s"], 1)
            s[f"sfm_{key}_transfer_limit_mb_per_s"] = round(r[key]["transfer_limit"]["mb_per_s"], 1)
            assert r[key]["checksum"] == r["local"]["checksum"], f"sfm read different values over HTTP from {store}"
    if "http_64" in r:
        s["ratio_http_64_over_local"] = round(r["http_64"]["mb_per_s"] / local, 2)
        s["sfm_http_64_mb_fetched_per_box"] = round(r["http_64"]["mb_fetched"] / sfm["boxes"], 1)
        # Transfers and decoding share the same cores: if their costs simply add up, HTTP can reach at
        # most 1 / (1 / transfer limit + 1 / local).
        limit = r["http_64"]["transfer_limit"]["mb_per_s"]
        s["http_64_additive_bound_mb_per_s"] = round(1 / (1 / limit + 1 / local), 1)
    s["targets_met"] = {"5x_zarr_python": s["ratio_sfm_over_zarr_python"] >= 5,
                        "1x_tensorstore": s["ratio_sfm_over_tensorstore"] >= 1,
                        "http_64_within_20pct": s.get("ratio_http_64_over_local", 0) >= 0.8}
    out["stores"][store] = s
print(json.dumps(out, indent=2))
PY
