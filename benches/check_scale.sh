#!/usr/bin/env bash
# Live checking at scale: the platform's reference configuration grown by N routed services
# (benches/gen_platform.py --services N --clients CLIENTS: one LXC with a Traefik service each,
# every name on the gateway certificate, and CLIENTS of those guests calling the platform with a
# trace of their own), served by the lab's reference mode (`lab --serve-config`) on loopback
# inside a private network namespace (`unshare -rn`, so nothing can leave the machine), then a
# healthy-path `check --all`. Steps originate from CLIENTS + 5 guests (the gateway, Traefik, the
# step-ca LXC, the two Portainer VMs) and the host.
#
# VANTAGES says how the guests are reached:
#   stand-ins  (default) through real transport calls: stand-in `pvesh` (the guests spread over
#              three nodes), `ssh`, `pct` and `qm` first on PATH, each logging its calls; `pct` /
#              `qm` run the agent with the guest's /etc/hosts and /etc/resolv.conf (the lab's
#              files) bind-mounted in a private mount namespace. Prints the calls per guest.
#   simulated  every guest a simulated vantage of the lab (its steps run from this process:
#              no transport call).
# Prints the steps, the originating vantages and how they ran, wall time, steps per second and
# peak memory (/usr/bin/time -v).
# usage: benches/check_scale.sh [path/to/phoenix-doctor] [services] [timeout] [clients] [vantages]
set -euo pipefail
bin=$(realpath "${1:-target/release/phoenix-doctor}")
services=${2:-200}
timeout=${3:-2s}
clients=${4:-20}
vantages=${5:-stand-ins}
here=$(realpath "$(dirname "$0")")
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
case $vantages in stand-ins | simulated) ;; *) echo "vantages: stand-ins or simulated" >&2; exit 2 ;; esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 "$here/gen_platform.py" "$work/platform" --services "$services" --clients "$clients"

if [ "$vantages" = stand-ins ]; then
    # Every guest of the config, on this node, pve2 and pve3 in turn.
    python3 - "$work/platform/etc" "$(hostname -s)" >"$work/resources.json" <<'PY'
import json, sys
etc, here = sys.argv[1], sys.argv[2]
lxc = json.load(open(f"{etc}/phoenix_lxc_configs.json"))["lxc_configs"]
vms = json.load(open(f"{etc}/phoenix_vm_configs.json"))["vms"]
guests = [("lxc", int(k)) for k in lxc] + [("qemu", v["vmid"]) for v in vms]
nodes = [here, "pve2", "pve3"]
print(json.dumps([{"vmid": i, "type": t, "node": nodes[n % 3], "status": "running"}
                  for n, (t, i) in enumerate(guests)]))
PY
    mkdir "$work/bin"
    log=$work/calls.log
    stand_in() { printf '#!/bin/sh\n%s\n' "$2" >"$work/bin/$1"; chmod +x "$work/bin/$1"; }
    stand_in pvesh "echo \"pvesh \$*\" >> $log; cat $work/resources.json"
    stand_in ssh "echo \"ssh \$*\" >> $log
while [ \"\$1\" = -o ]; do shift 2; done
node=\${1#root@}; shift
PD_NODE=\$node exec sh -c \"\$*\""
    # In a guest: its /etc/hosts and /etc/resolv.conf over the machine's, in a private mount
    # namespace (the lab's files for the guest, else those it writes for Traefik's LXC).
    in_guest="files=$work/lab/vantages/\$kind-\$id; [ -d \"\$files\" ] || files=$work/lab/vantages/lxc-102
exec unshare -m --propagation private sh -c 'mount --bind \"\$0/hosts\" /etc/hosts && mount --bind \"\$0/resolv.conf\" /etc/resolv.conf && exec \"\$@\"' \"\$files\""
    stand_in pct "echo \"pct@\${PD_NODE:-here} \$*\" >> $log
kind=lxc id=\$2; shift 3
$in_guest \"\$@\""
    stand_in qm "echo \"qm@\${PD_NODE:-here} \$*\" >> $log
kind=vm id=\$3
while [ \"\$1\" != -- ]; do shift; done; shift
set -- python3 -c '
import json, subprocess, sys
p = subprocess.run(sys.argv[1:], stdin=sys.stdin, capture_output=True)
print(json.dumps({\"exited\": 1, \"exitcode\": p.returncode, \"out-data\": p.stdout.decode(), \"err-data\": p.stderr.decode()}))
' \"\$@\"
$in_guest \"\$@\""
fi

exec unshare -rn bash -s "$bin" "$work" "$timeout" "$clients" "$vantages" <<'INNER'
set -euo pipefail
bin=$1; work=$2; timeout=$3; clients=$4; vantages=$5
ip link set lo up
"$bin" lab --serve-config "$work/platform/etc" --dir "$work/lab" >"$work/lab.log" 2>&1 &
labpid=$!
trap 'kill $labpid 2>/dev/null || true' EXIT
for _ in $(seq 400); do [ -f "$work/lab/etc/phoenix-doctor.toml" ] && break; sleep 0.05; done
sleep 0.5
site=$work/lab/etc/phoenix-doctor.toml
if [ "$vantages" = simulated ]; then
    # A simulated vantage per client guest: the system files the lab wrote for Traefik's.
    for i in $(seq 0 $((clients - 1))); do
        printf '\n[vantage."lxc:%d"]\nhosts_file = "%s"\nresolv_conf = "%s"\n' $((3000 + i)) \
            "$work/lab/vantages/lxc-102/hosts" "$work/lab/vantages/lxc-102/resolv.conf" >>"$site"
    done
else
    # Only the host stays simulated: every guest is reached through its transport.
    python3 - "$site" <<'PY'
import re, sys
p = sys.argv[1]
text = open(p).read()
# Drop every [vantage."lxc:N"] / [vantage."vm:N"] table the lab wrote (up to the next table).
text = re.sub(r'\n\[vantage\."(lxc|vm):\d+"\]\n(?:[^\[][^\n]*\n|\n)*', "\n", text)
open(p, "w").write(text)
PY
    export PATH="$work/bin:$PATH"
fi
args=(check --all --config-dir "$work/lab/etc" --probes "$work/platform/probes" --scope 127.0.0.0/8
      --timeout "$timeout" --agent-path "$bin" --format json)
/usr/bin/time -v "$bin" "${args[@]}" >"$work/out.json" 2>"$work/time.txt" || true
/usr/bin/time -f %e -o "$work/lint.txt" "$bin" lint --config-dir "$work/lab/etc" --format json \
  >/dev/null 2>&1 || true
echo "static side alone (lint of the same config): $(tail -1 "$work/lint.txt") s"
python3 - "$work/out.json" "$work/time.txt" "$timeout" "$work/calls.log" <<'PY'
import json, os, re, sys
from collections import Counter
try:
    doc = json.load(open(sys.argv[1]))
except ValueError:
    sys.exit("check printed no JSON:\n" + open(sys.argv[2]).read()[-3000:])
t = open(sys.argv[2]).read()
reports = doc["reports"]
verdicts = Counter(r["verdict"] for r in reports)
steps = sum(len(r["steps"]) for r in reports)
vantages = {s["from"] for r in reports for s in r["steps"]}
via = {}
for r in reports:
    for s in r["steps"]:
        v = s.get("vantage", {}).get("via", "")
        if v:  # a blocked step ran nowhere
            kind = "ssh + " + v.split()[4] if v.startswith("ssh ") else v.split()[0]
            via.setdefault(kind, set()).add(s["from"])
wall = t.split("Elapsed (wall clock) time (h:mm:ss or m:ss):")[1].split()[0]
parts = [float(x) for x in wall.split(":")]
secs = sum(p * 60 ** (len(parts) - 1 - i) for i, p in enumerate(parts))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
print(f"targets {len(reports)}, verdicts {dict(verdicts)}, steps {steps} (per target, shared ones counted each time)")
print(f"originating vantages {len(vantages)}: " + ", ".join(f"{len(v)} {k}" for k, v in sorted(via.items())))
if os.path.exists(sys.argv[4]):
    calls = Counter()
    listing = 0
    for line in open(sys.argv[4]):
        w = line.split()
        if w[0] == "pvesh":
            listing += 1
        elif w[0].startswith("pct@"):
            calls["lxc:" + w[2]] += 1
        elif w[0].startswith("qm@"):
            calls["vm:" + w[3]] += 1
    per = Counter(calls.values())
    print(f"transport calls: {sum(calls.values())} into {len(calls)} guests (calls per guest: "
          + ", ".join(f"{n} guests {k}" for k, n in sorted(per.items()))
          + f"; the ssh hop to another node counted with the call it carries), {listing} pvesh listing")
else:
    print("transport calls: 0 (every guest simulated)")
slow = sorted(((s["duration_ms"], r["target"], s["id"]) for r in reports for s in r["steps"]), reverse=True)[:1]
print(f"slowest step: {slow[0][0]:.0f} ms ({slow[0][1]} {slow[0][2]}); probing (one engine run): {reports[0]['duration_ms'] / 1000:.2f} s")
print(f"check --all --timeout {sys.argv[3]}: wall {secs:.2f} s, {steps / secs:.0f} steps/s, peak RSS {rss / 1024:.1f} MiB")
PY
INNER
