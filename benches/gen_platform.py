#!/usr/bin/env python3
"""Generate a scaled-up Phoenix platform config from the reference config.

The reference platform (fixtures/configs/reference: etc/ and stacks/) is copied, then grown:

  --guests N        N extra LXCs and N/10 extra VMs. Every extra LXC clones 900, has a static
                    address, a traefik_service and firewall rules (IN from Traefik, OUT to the
                    host's dnsmasq); Traefik (LXC 102) gets one OUT rule per extra LXC. Every
                    extra VM clones 9000, deploys its own stack (stacks/app-<j>/phoenix.json, a
                    service with Traefik labels and a firewall rule) and has an IN rule from
                    Traefik, which gets the matching OUT rule. The global rules written for the
                    /24 are widened with the subnet, so the guests' DNS is allowed.

The addresses it writes are the platform's own (10.0.0.0/16): they are config data for the
commands that send nothing (lint, plan, show). A benchmark that probes the generated platform
serves it with `lab --serve-config`, which moves every address into 127.<n>.0.0/24 by last
octet, inside a private network namespace (benches/check_scale.sh).
  --clone-chain N   N extra LXCs without nameservers, each cloned from the next, the last one
                    cloned from the tenth-to-last: a long clone chain ending in a cycle.

The subnet is widened to /16 so that every address belongs to the platform. Nothing is sent
anywhere: the output is for the static commands (lint, plan, show, drift).

  --deployed BIN    also write OUT/deployed, the tree `drift --deployed` reads (host/, lxc-101/,
                    lxc-102/): the files the platform's generators write, rendered by BIN's
                    `show dns|routes|gateway|firewall` (the derivations tests/config_model.rs
                    holds against the generators' golden outputs), then hand-edited in four
                    places so that drift has findings: one dnsmasq record points elsewhere, one
                    Traefik router rule gains a PathPrefix, one cluster.fw rule is gone and one
                    VM's <vmid>.fw has a rule the config does not write.

  --services N      instead of --guests: N routed services on the platform's own /24, for a
                    live check against `lab --serve-config` (which moves 10.0.0.x to 127.n.0.x):
                    LXC 3000+i `svc<i>` on a free 10.0.0.x with a Traefik service on port 8000,
                    every name on the gateway certificate. With --clients M, LXC 3000..3000+M-1
                    are also clients of the platform: OUT/probes holds the built-in traces plus
                    `client-<i>` (lxc:<3000+i> resolves svc<i+1> through dnsmasq, then calls it
                    through the gateway over TLS), for `check --all --probes OUT/probes`.

usage: benches/gen_platform.py OUT_DIR [--guests N] [--clone-chain N] [--deployed BIN]
                               [--services N [--clients M]] [--reference DIR]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.join(HERE, "..", "fixtures", "configs", "reference")
PROBES = os.path.join(HERE, "..", "probes")

LXC_BASE = 10000
VM_BASE = 20000
CHAIN_BASE = 40000


def addr(block, i):
    """10.0.<block + i / 250>.<2 + i % 250>"""
    return "10.0.%d.%d" % (block + i // 250, 2 + i % 250)


def load(path):
    with open(path) as f:
        return json.load(f)


def save(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


def rule(direction, peer_key, peer, port, comment, proto="tcp"):
    return {
        "type": direction,
        "action": "ACCEPT",
        peer_key: peer,
        "proto": proto,
        "port": str(port),
        "comment": comment,
    }


def grow(out, guests, chain):
    etc = os.path.join(out, "etc")
    hyp_path = os.path.join(etc, "phoenix_hypervisor_config.json")
    hyp = load(hyp_path)
    net = hyp["network"]
    net["default_subnet"] = "10.0.0.0/16"
    net["interfaces"]["address"] = net["interfaces"]["address"].split("/")[0] + "/16"
    # Rules written for the /24 (DNS and NFS from the guests) cover the whole subnet.
    fw = hyp.get("shared_volumes", {}).get("firewall", {})
    for r in fw.get("global_firewall_rules", []):
        for key in ("source", "dest"):
            if r.get(key) == "10.0.0.0/24":
                r[key] = "10.0.0.0/16"
    save(hyp_path, hyp)

    lxc_path = os.path.join(etc, "phoenix_lxc_configs.json")
    lxc_doc = load(lxc_path)
    lxcs = lxc_doc["lxc_configs"]
    traefik_rules = lxcs["102"].setdefault("firewall", {"enabled": True, "rules": []})["rules"]
    for i in range(guests):
        ctid = LXC_BASE + i
        ip = addr(1, i)
        name = "svc-%d" % i
        lxcs[str(ctid)] = {
            "name": name,
            "clone_from_ctid": "900",
            "memory_mb": 1024,
            "cores": 1,
            "storage_pool": "quickOS-lxc-disks",
            "storage_size_gb": 8,
            "network_config": {
                "name": "eth0",
                "bridge": "vmbr0",
                "ip": ip + "/16",
                "gw": "10.0.0.1",
                "nameservers": "10.0.0.13",
            },
            "features": ["base_setup"],
            "traefik_service": {"name": name, "port": 8000},
            "firewall": {
                "enabled": True,
                "rules": [
                    rule("in", "source", "10.0.0.12", 8000, "Allow Traefik to reach %s" % name),
                    rule("out", "dest", "10.0.0.13", 53, "DNS to the host", proto="udp"),
                ],
            },
        }
        traefik_rules.append(
            rule("out", "dest", ip, 8000, "Allow proxy to %s (%s)" % (name, ip))
        )
    for i in range(chain):
        ctid = CHAIN_BASE + i
        parent = CHAIN_BASE + i + 1 if i + 1 < chain else CHAIN_BASE + max(0, chain - 10)
        lxcs[str(ctid)] = {
            "name": "chain-%d" % i,
            "clone_from_ctid": str(parent),
            "network_config": {
                "name": "eth0",
                "bridge": "vmbr0",
                "ip": addr(60, i) + "/16",
                "gw": "10.0.0.1",
            },
            "features": ["base_setup"],
        }
    vm_path = os.path.join(etc, "phoenix_vm_configs.json")
    vm_doc = load(vm_path)
    stacks_dir = os.path.join(out, "stacks")
    for j in range(guests // 10):
        vmid = VM_BASE + j
        ip = addr(40, j)
        stack = "app-%d" % j
        host = "%s.internal.thinkheads.ai" % stack
        vm_doc["vms"].append(
            {
                "vmid": vmid,
                "name": "vm-%d" % j,
                "clone_from_vmid": 9000,
                "features": ["base_setup", "docker"],
                "network_config": {"ip": ip + "/16", "gw": "10.0.0.1", "nameserver": "10.0.0.13"},
                "docker_stacks": [stack],
                "firewall": {
                    "enabled": True,
                    "rules": [
                        rule("in", "source", "10.0.0.12", 7000, "Allow Traefik to reach %s" % stack),
                    ],
                },
            }
        )
        traefik_rules.append(rule("out", "dest", ip, 7000, "Allow proxy to %s (%s)" % (stack, ip)))
        d = os.path.join(stacks_dir, stack)
        os.makedirs(d, exist_ok=True)
        save(
            os.path.join(d, "phoenix.json"),
            {
                "description": "Generated application %d." % j,
                "environments": {
                    "production": {
                        "variables": [],
                        "files": [],
                        "services": {
                            stack: {
                                "traefik_labels": [
                                    "traefik.enable=true",
                                    "traefik.http.routers.%s.rule=Host(`%s`)" % (stack, host),
                                    "traefik.http.routers.%s.entrypoints=web" % stack,
                                    "traefik.http.services.%s.loadbalancer.server.port=7000" % stack,
                                ]
                            }
                        },
                        "firewall_rules": [
                            {
                                "type": "in",
                                "action": "ACCEPT",
                                "proto": "tcp",
                                "port": "7001",
                                "comment": "Allow access to the %s metrics" % stack,
                            }
                        ],
                    }
                },
            },
        )
    save(vm_path, vm_doc)
    save(lxc_path, lxc_doc)


def services(out, n, clients):
    """N routed services on free 10.0.0.x addresses, M of their guests clients (see above)."""
    etc = os.path.join(out, "etc")
    lxc_path = os.path.join(etc, "phoenix_lxc_configs.json")
    lxc = load(lxc_path)
    guests = lxc["lxc_configs"]
    used = {g.get("network_config", {}).get("ip", "").split("/")[0] for g in guests.values()}
    # The template: an LXC with a Traefik service on a plain HTTP port.
    template = next(
        g for g in guests.values() if g.get("traefik_service", {}).get("port") == 8000
    )
    free = ["10.0.0.%d" % i for i in range(20, 255) if "10.0.0.%d" % i not in used]
    if len(free) < n:
        sys.exit("only %d free addresses in 10.0.0.0/24 for %d services" % (len(free), n))
    manifest_path = os.path.join(etc, "certificate-manifest.json")
    manifest = load(manifest_path)
    gateway = next(c for c in manifest if c["common_name"].startswith("nginx."))
    domain = gateway["common_name"].split(".", 1)[1]
    for i in range(n):
        g = json.loads(json.dumps(template))
        g["name"] = "svc%03d" % i
        g["network_config"]["ip"] = "%s/24" % free[i]
        g["traefik_service"] = {"name": "svc%03d" % i, "port": 8000}
        guests[str(3000 + i)] = g
        gateway["sans"].append("svc%03d.%s" % (i, domain))
    save(lxc_path, lxc)
    save(manifest_path, manifest)
    probes = os.path.join(out, "probes")
    os.makedirs(probes)
    for name in sorted(os.listdir(PROBES)):
        if name.endswith(".toml"):
            shutil.copy(os.path.join(PROBES, name), probes)
    for i in range(clients):
        ctid, nxt = 3000 + i, "svc%03d" % ((i + 1) % n)
        with open(os.path.join(probes, "client-%d.toml" % i), "w") as f:
            f.write(CLIENT_TRACE % {"i": i, "ctid": ctid, "next": nxt})


CLIENT_TRACE = """name = "client-%(i)d"
description = "lxc:%(ctid)d resolves %(next)s and calls it through the gateway"
[vars]
ca_bundle = "/mnt/pve/quickOS/lxc-persistent-data/103/ssl/phoenix_ca.crt"
[[hop]]
id = "client-dns"
title = "lxc:%(ctid)d → dnsmasq :{port}"
from = "lxc:%(ctid)d"
to = "dnsmasq"
dns = { names = ["%(next)s"], server = "dnsmasq", system = true }
[[hop]]
id = "client-gateway"
path = "target"
title = "lxc:%(ctid)d → NGINX gateway :{port}"
from = "lxc:%(ctid)d"
to = "gateway"
tcp = true
tls = { sni = "%(next)s.{domain}", trust = "{ca_bundle}" }
http = { url = "https://%(next)s.{domain}/", trust = "{ca_bundle}" }
"""


def show(binary, out, *what):
    return subprocess.run(
        [binary, "--config-dir", os.path.join(out, "etc"), "show", *what],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def edit(text, old, new):
    """Replace the first line that starts with `old` (a hand edit that must land)."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith(old):
            lines[i] = new(line)
            return "\n".join(lines)
    sys.exit("no line starts with %r" % old)


def deployed(out, binary):
    """What the generators write, in the layout `drift --deployed` reads, with four hand edits."""
    root = os.path.join(out, "deployed")

    def put(vantage, path, text):
        p = os.path.join(root, vantage, path.lstrip("/"))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)

    # dnsmasq: one record answers another address (stale or edited by hand).
    records = show(binary, out, "dns")
    records = edit(records, "address=/", lambda l: l.rsplit("/", 1)[0] + "/10.0.0.250")
    put("host", "/etc/dnsmasq.d/00-phoenix-internal.conf", records)
    # Traefik: one router rule narrowed by hand.
    dynamic = show(binary, out, "routes")
    dynamic = edit(
        dynamic, "      rule: ", lambda l: l[:-1] + " && PathPrefix(`/admin`)" + l[-1]
    )
    put("lxc-102", "/etc/traefik/traefik.yml",
        "providers:\n  file:\n    directory: /etc/traefik/dynamic\n    watch: true\n")
    put("lxc-102", "/etc/traefik/dynamic/dynamic_conf.yml", dynamic)
    gateway = show(binary, out, "gateway")
    put("lxc-101", "/etc/nginx/sites-available/gateway", gateway)
    put("lxc-101", "/etc/nginx/sites-enabled/gateway", gateway)
    # Firewall files: cluster.fw loses its last rule, the first VM's file gains one.
    files = show(binary, out, "firewall").split("# ==> ")[1:]
    vm_edited = False
    for chunk in files:
        name, text = chunk.split(" <==\n", 1)
        text = text.rstrip("\n") + "\n"
        if name == "cluster.fw":
            text = text[: text.rstrip("\n").rfind("\n") + 1]
        elif not vm_edited:
            text += "IN ACCEPT -p tcp -dport 2222 # opened by hand\n"
            vm_edited = True
        put("host", "/etc/pve/firewall/" + name, text)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--guests", type=int, default=0)
    p.add_argument("--clone-chain", type=int, default=0)
    p.add_argument("--deployed", metavar="BIN")
    p.add_argument("--services", type=int, default=0)
    p.add_argument("--clients", type=int, default=0)
    p.add_argument("--reference", default=REFERENCE)
    a = p.parse_args()
    if a.services and (a.guests or a.clone_chain):
        sys.exit("--services grows the platform's own /24: not with --guests or --clone-chain")
    if a.clients > a.services:
        sys.exit("--clients is at most --services")
    if os.path.exists(a.out) and os.listdir(a.out):
        sys.exit("%s exists and is not empty" % a.out)
    os.makedirs(a.out, exist_ok=True)
    for sub in ("etc", "stacks"):
        shutil.copytree(os.path.join(a.reference, sub), os.path.join(a.out, sub))
    if a.services:
        services(a.out, a.services, a.clients)
    else:
        grow(a.out, a.guests, a.clone_chain)
    if a.deployed:
        deployed(a.out, a.deployed)


if __name__ == "__main__":
    main()
