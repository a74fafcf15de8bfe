#!/usr/bin/env bash
# Live checking at scale: the platform's reference configuration grown by N routed services
# (one LXC with a Traefik service each, every name on the gateway certificate), served by the
# lab's reference mode (`lab --serve-config`) on loopback inside a private network namespace
# (`unshare -rn`, so nothing can leave the machine), then a healthy-path `check --all`.
# CLIENTS of the new services' guests are also clients of the platform: each gets a simulated
# vantage (its own hosts file and resolv.conf) and a trace of its own (`client-<n>`: resolve the
# next service through dnsmasq, then call it through the gateway over TLS), so steps originate
# from CLIENTS + 4 vantages (host, gateway, Traefik, the Portainer VM).
# Prints the steps, the originating vantages and how they ran, wall time, steps per second and
# peak memory (/usr/bin/time -v).
# usage: benches/check_scale.sh [path/to/phoenix-doctor] [services] [timeout] [clients]
set -euo pipefail
bin=$(realpath "${1:-target/release/phoenix-doctor}")
services=${2:-200}
timeout=${3:-2s}
clients=${4:-20}
here=$(realpath "$(dirname "$0")")
ref=$(realpath "$here/../fixtures/configs/reference")
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$ref" "$work/platform"
python3 - "$work/platform/etc" "$services" <<'PY'
import json, sys, copy
etc, n = sys.argv[1], int(sys.argv[2])
lxc_path = f"{etc}/phoenix_lxc_configs.json"
lxc = json.load(open(lxc_path))
guests = lxc["lxc_configs"]
used = set()
for g in guests.values():
    ip = g.get("network_config", {}).get("ip", "")
    used.add(ip.split("/")[0])
# A template: an LXC with a Traefik service on a plain HTTP port.
template = next(g for g in guests.values()
                if g.get("traefik_service", {}).get("port") == 8000)
free = [f"10.0.0.{i}" for i in range(20, 255) if f"10.0.0.{i}" not in used]
assert len(free) >= n, f"only {len(free)} free addresses for {n} services"
manifest_path = f"{etc}/certificate-manifest.json"
manifest = json.load(open(manifest_path))
gateway = next(c for c in manifest if c["common_name"].startswith("nginx."))
domain = gateway["common_name"].split(".", 1)[1]
for i in range(n):
    ctid = str(3000 + i)
    g = copy.deepcopy(template)
    g["name"] = f"svc{i:03d}"
    g["network_config"]["ip"] = f"{free[i]}/24"
    g["traefik_service"] = {"name": f"svc{i:03d}", "port": 8000}
    guests[ctid] = g
    gateway["sans"].append(f"svc{i:03d}.{domain}")
json.dump(lxc, open(lxc_path, "w"), indent=2)
json.dump(manifest, open(manifest_path, "w"), indent=2)
PY
# The built-in traces, plus one client trace per client guest (LXC 3000 + i calls svc<i+1>).
mkdir "$work/probes"
cp "$here"/../probes/*.toml "$work/probes/"
for i in $(seq 0 $((clients - 1))); do
    next=$(printf 'svc%03d' $(( (i + 1) % services )))
    cat >"$work/probes/client-$i.toml" <<TOML
name = "client-$i"
description = "lxc:$((3000 + i)) resolves $next and calls it through the gateway"
[vars]
ca_bundle = "/mnt/pve/quickOS/lxc-persistent-data/103/ssl/phoenix_ca.crt"
[[hop]]
id = "client-dns"
title = "lxc:$((3000 + i)) → dnsmasq :{port}"
from = "lxc:$((3000 + i))"
to = "dnsmasq"
dns = { names = ["$next"], server = "dnsmasq", system = true }
[[hop]]
id = "client-gateway"
path = "target"
title = "lxc:$((3000 + i)) → NGINX gateway :{port}"
from = "lxc:$((3000 + i))"
to = "gateway"
tcp = true
tls = { sni = "$next.{domain}", trust = "{ca_bundle}" }
http = { url = "https://$next.{domain}/", trust = "{ca_bundle}" }
TOML
done
exec unshare -rn bash -s "$bin" "$work" "$timeout" "$clients" <<'INNER'
set -euo pipefail
bin=$1; work=$2; timeout=$3; clients=$4
ip link set lo up
"$bin" lab --serve-config "$work/platform/etc" --dir "$work/lab" >"$work/lab.log" 2>&1 &
labpid=$!
trap 'kill $labpid 2>/dev/null || true' EXIT
for _ in $(seq 400); do [ -f "$work/lab/etc/phoenix-doctor.toml" ] && break; sleep 0.05; done
sleep 0.5
# A simulated vantage per client guest: the system files the lab wrote for its guests.
for i in $(seq 0 $((clients - 1))); do
    printf '\n[vantage."lxc:%d"]\nhosts_file = "%s"\nresolv_conf = "%s"\n' $((3000 + i)) \
        "$work/lab/vantages/lxc-102/hosts" "$work/lab/vantages/lxc-102/resolv.conf" \
        >>"$work/lab/etc/phoenix-doctor.toml"
done
args=(check --all --config-dir "$work/lab/etc" --probes "$work/probes" --scope 127.0.0.0/8
      --timeout "$timeout" --format json)
/usr/bin/time -v "$bin" "${args[@]}" >"$work/out.json" 2>"$work/time.txt" || true
/usr/bin/time -f %e -o "$work/lint.txt" "$bin" lint --config-dir "$work/lab/etc" --format json \
  >/dev/null 2>&1 || true
echo "static side alone (lint of the same config): $(tail -1 "$work/lint.txt") s"
python3 - "$work/out.json" "$work/time.txt" "$timeout" <<'PY'
import json, sys, re
doc = json.load(open(sys.argv[1]))
t = open(sys.argv[2]).read()
reports = doc["reports"]
verdicts = {}
for r in reports:
    verdicts[r["verdict"]] = verdicts.get(r["verdict"], 0) + 1
steps = sum(len(r["steps"]) for r in reports)
vantages = {s["from"] for r in reports for s in r["steps"]}
via = {}
for r in reports:
    for s in r["steps"]:
        v = s.get("vantage", {}).get("via", "")
        via.setdefault(v, set()).add(s["from"])
wall = t.split("Elapsed (wall clock) time (h:mm:ss or m:ss):")[1].split()[0]
parts = [float(x) for x in wall.split(":")]
secs = sum(p * 60 ** (len(parts) - 1 - i) for i, p in enumerate(parts))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
print(f"targets {len(reports)}, verdicts {verdicts}, steps {steps} (per target, shared ones counted each time)")
print(f"originating vantages {len(vantages)}: " + ", ".join(f"{len(v)} {k or 'not run'}" for k, v in sorted(via.items())))
print("transport calls (pct exec / qm guest exec / ssh): " + str(sum(len(v) for k, v in via.items() if k not in ("local", "simulated", ""))))
slow = sorted(((s["duration_ms"], r["target"], s["id"], s["verdict"], s.get("code"))
               for r in reports for s in r["steps"]), reverse=True)[:1]
print(f"slowest step: {slow[0][0]:.0f} ms ({slow[0][1]} {slow[0][2]}); probing (one engine run): {reports[0]['duration_ms'] / 1000:.2f} s")
print(f"check --all --timeout {sys.argv[3]}: wall {secs:.2f} s, {steps / secs:.0f} steps/s, peak RSS {rss / 1024:.1f} MiB")
PY
INNER
