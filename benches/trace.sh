#!/usr/bin/env bash
# Whole-process trace costs against the built-in lab on loopback (inside a private network
# namespace made with `unshare -rn`, so nothing can leave the machine):
#   1. a healthy `trace qdrant`, process start included (median of N runs);
#   2. the same trace with qdrant's port silently dropped by nftables: about one connect
#      timeout, not one per step;
#   3. `trace qdrant --replay` (diagnosis and rendering only).
# usage: benches/trace.sh [path/to/phoenix-doctor] [runs]
set -euo pipefail
bin=$(realpath "${1:-target/release/phoenix-doctor}")
runs=${2:-20}
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
exec unshare -rn bash -s "$bin" "$runs" <<'INNER'
set -euo pipefail
bin=$1; runs=$2
ip link set lo up
lab=$(mktemp -d)
"$bin" lab --dir "$lab" >/dev/null 2>&1 &
labpid=$!
trap 'kill $labpid 2>/dev/null; rm -rf "$lab"' EXIT
for _ in $(seq 100); do [ -f "$lab/etc/phoenix-doctor.toml" ] && break; sleep 0.05; done
sleep 0.2
ms() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
t() { local s e; s=$(ms); "$@" >/dev/null 2>&1 || true; e=$(ms); echo $(( (e - s) / 1000 )); }
args=(trace qdrant --config-dir "$lab/etc" --scope 127.0.0.0/8 --format json)
out=$("$bin" "${args[@]}" || true)
case $out in *'"verdict": "healthy"'*) ;; *) echo "lab not healthy" >&2; exit 1 ;; esac
healthy=$(for _ in $(seq "$runs"); do t "$bin" "${args[@]}"; done | median)
printf 'healthy trace qdrant (31 steps, process start included): median %.1f ms over %d runs\n' "$(echo "$healthy/1000" | bc -l)" "$runs"
"$bin" "${args[@]}" --save-run "$lab/run.json" >/dev/null || true
replay=$(for _ in $(seq "$runs"); do t "$bin" trace qdrant --replay "$lab/run.json" --format json; done | median)
printf 'replay (diagnose + render only): median %.1f ms\n' "$(echo "$replay/1000" | bc -l)"
port=$(grep -o '"port": *[0-9]*' "$lab/etc/phoenix-doctor.toml" 2>/dev/null | head -1 || true)
nft -f - <<NFT
table inet bench {
  chain input {
    type filter hook input priority 0; policy accept;
    ip daddr 127.0.0.102 tcp dport 6333 drop
  }
}
NFT
for timeout in 1s 2s; do
  dropped=$(for _ in 1 2 3; do t "$bin" "${args[@]}" --timeout "$timeout"; done | median)
  printf 'trace qdrant with 127.0.0.102:6333 dropped, --timeout %s: median %.1f ms\n' "$timeout" "$(echo "$dropped/1000" | bc -l)"
done
out=$("$bin" "${args[@]}" --timeout 1s || true); echo "$out" | grep -o "\"code\": \"PD-[A-Z]*-[0-9]*\"" | head -1
INNER
