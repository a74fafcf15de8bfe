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
anywhere: the output is for the static commands (lint, plan, show).

usage: benches/gen_platform.py OUT_DIR [--guests N] [--clone-chain N] [--reference DIR]
"""

import argparse
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.join(HERE, "..", "fixtures", "configs", "reference")

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


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--guests", type=int, default=0)
    p.add_argument("--clone-chain", type=int, default=0)
    p.add_argument("--reference", default=REFERENCE)
    a = p.parse_args()
    if os.path.exists(a.out) and os.listdir(a.out):
        sys.exit("%s exists and is not empty" % a.out)
    os.makedirs(a.out, exist_ok=True)
    for sub in ("etc", "stacks"):
        shutil.copytree(os.path.join(a.reference, sub), os.path.join(a.out, sub))
    grow(a.out, a.guests, a.clone_chain)


if __name__ == "__main__":
    main()
