#!/usr/bin/env bash
# Mutation check: each mutation below changes one derivation or one reason→code mapping in a
# scratch copy of the tree (never the tree itself), runs the tests that should notice, and prints
# "caught by <test>" or "MISSED". Exit 1 when a mutation is missed, its anchor is gone, or it
# does not build. docs/testing.md ("Mutations") keeps the last run's table.
#
# usage: benches/mutations.sh [NAME...]        (default: every mutation)
#        benches/mutations.sh --check-anchors  (apply each patch to a copy, build nothing)
# env:   CARGO_TARGET_DIR (default: target/mutations, shared by every mutation; debug info off)
#
# Tests that start the lab run under `flock /tmp/pd-net.lock` (taken only while they run).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target/mutations}
export CARGO_INCREMENTAL=0 CARGO_PROFILE_DEV_DEBUG=0 CARGO_TERM_COLOR=never
# A fixed scratch path: each mutation rebuilds only this crate, over the same artifacts.
scratch=$CARGO_TARGET_DIR/src-copy
log=$CARGO_TARGET_DIR/mutations.log
mkdir -p "$CARGO_TARGET_DIR"
: > "$log"

copy_tree() {
  rm -rf "$scratch"
  mkdir -p "$scratch"
  tar -C "$root" --exclude=./target --exclude=./.git -cf - . | tar -C "$scratch" -xf -
}

# patch FILE OLD NEW: replace the one occurrence of OLD (an exact anchor) in the scratch copy.
patch() {
  python3 - "$scratch/$1" "$2" "$3" <<'PY'
import sys
path, old, new = sys.argv[1:]
s = open(path).read()
n = s.count(old)
if n != 1:
    sys.exit(f"anchor found {n} times in {path}: {old!r}")
open(path, "w").write(s.replace(old, new))
PY
}

# run SPEC: one test run in the scratch copy. SPEC is lib:FILTER, test:FILE or test:FILE:FILTER;
# tests marked lab: run under the lock. Prints the first failing test, empty when all pass.
run() {
  local spec=$1 lock=() args
  case "$spec" in
    lab:*) lock=(flock /tmp/pd-net.lock); spec=${spec#lab:} ;;
  esac
  case "$spec" in
    lib:*) args=(--lib "${spec#lib:}") ;;
    test:*:*) spec=${spec#test:}; args=(--test "${spec%%:*}" "${spec#*:}") ;;
    test:*) args=(--test "${spec#test:}") ;;
  esac
  (cd "$scratch" && cargo test --no-run "${args[@]}" >>"$log" 2>&1) || { echo "BUILD-FAILED"; return; }
  local out
  out=$(cd "$scratch" && "${lock[@]}" cargo test "${args[@]}" 2>&1) || true
  echo "$out" >>"$log"
  local failed
  failed=$(echo "$out" | sed -n 's/^test \(.*\) \.\.\. FAILED$/\1/p' | head -1)
  if [ -n "$failed" ]; then
    local bin=${args[1]}
    [ "${args[0]}" = --lib ] && bin=lib
    echo "$bin::$failed"
  elif ! echo "$out" | grep -q '^test result: ok'; then
    echo "BUILD-FAILED"
  fi
}

# The mutations: name, what it breaks, the patch, the tests that should notice (in order).
mutations=(
  wrong-key-usage dns-refused tcp-unreachable http-body
  dns-stack-label route-vm-scheme firewall-stack-rules cert-sans
  mtls-layer gateway-vantage target-path-first symptom-of-proxy
)
describe() {
  case $1 in
    wrong-key-usage) echo "reason→code: wrong key usage → PD-TLS-006 instead of PD-TLS-008" ;;
    dns-refused) echo "reason→code: REFUSED/SERVFAIL → PD-DNS-001 instead of PD-DNS-005" ;;
    tcp-unreachable) echo "reason→code: TCP unreachable → PD-TCP-002 instead of PD-TCP-003" ;;
    http-body) echo "reason→code: HTTP body mismatch → PD-HTTP-002 instead of PD-HTTP-003" ;;
    dns-stack-label) echo "model/dns.rs: a stack label's Host answers 10.0.0.12, not the gateway" ;;
    route-vm-scheme) echo "model/routes.rs: Traefik reaches VM backends over http://" ;;
    firewall-stack-rules) echo "model/firewall.rs: <vmid>.fw without its stacks' production rules" ;;
    cert-sans) echo "model/stacks.rs: a manifest entry's first SAN is dropped" ;;
    mtls-layer) echo "plan: the mTLS step of a hop is planned at layer tls" ;;
    gateway-vantage) echo "plan: gateway hops run from the Traefik LXC" ;;
    target-path-first) echo "diagnose: findings ranked by chain order only, not target path first" ;;
    symptom-of-proxy) echo "diagnose: a proxy hop answering an error is broken though the hop behind explains it" ;;
  esac
}
apply() {
  case $1 in
    wrong-key-usage) patch src/diagnose/judge.rs 'VerifyError::BadKeyUsage => PD_TLS_008,' 'VerifyError::BadKeyUsage => PD_TLS_006,' ;;
    dns-refused) patch src/diagnose/judge.rs 'Rcode::Refused | Rcode::ServFail | Rcode::NotImp | Rcode::FormErr => PD_DNS_005,' 'Rcode::NotImp | Rcode::FormErr => PD_DNS_005,' ;;
    tcp-unreachable) patch src/diagnose/judge.rs 'Some(Reason::Unreachable | Reason::NetUnreachable | Reason::PortUnreachable) => PD_TCP_003,' 'Some(Reason::Unreachable | Reason::NetUnreachable | Reason::PortUnreachable) => PD_TCP_002,' ;;
    http-body) patch src/diagnose/judge.rs 'return (d, PD_HTTP_003, false);' 'return (d, PD_HTTP_002, false);' ;;
    dns-stack-label) patch src/model/dns.rs $'self.gw.value.clone(),\n                            DnsRule::StackLabel,' $'"10.0.0.12".to_string(),\n                            DnsRule::StackLabel,' ;;
    route-vm-scheme) patch src/model/routes.rs 'GuestKind::Vm => ("https", VantageRef::Vm(g.id.value)),' 'GuestKind::Vm => ("http", VantageRef::Vm(g.id.value)),' ;;
    firewall-stack-rules) patch src/model/firewall.rs 'if let Some(env) = &s.production {' 'if let Some(env) = s.production.as_ref().filter(|_| false) {' ;;
    cert-sans) patch src/model/stacks.rs 'sans.iter().map(|s| s.value.clone()).collect()' 'sans.iter().skip(1).map(|s| s.value.clone()).collect()' ;;
    mtls-layer) patch src/plan/build.rs $'let mut s = self.step(\n            Layer::Mtls,' $'let mut s = self.step(\n            Layer::Tls,' ;;
    gateway-vantage) patch src/plan/build.rs $'m.gateway\n                        .as_ref()\n                        .ok_or_else(|| missing("the NGINX gateway LXC"))?' $'m.router\n                        .as_ref()\n                        .ok_or_else(|| missing("the Traefik LXC"))?' ;;
    target-path-first) patch src/diagnose/mod.rs 'ranked.sort_by_key(|(t, f)| (!t, hop_rank(&f.hop),' 'ranked.sort_by_key(|(_t, f)| (hop_rank(&f.hop),' ;;
    symptom-of-proxy) patch src/diagnose/mod.rs 'let explained = j.proxy_answer' 'let explained = false && j.proxy_answer' ;;
  esac
}
tests_for() {
  case $1 in
    wrong-key-usage|dns-refused|tcp-unreachable|http-body) echo "lib:diagnose::" ;;
    dns-stack-label) echo "lab:test:lab_golden test:config_model" ;;
    route-vm-scheme) echo "test:config_model lab:test:lab_golden" ;;
    firewall-stack-rules) echo "test:config_model" ;;
    cert-sans) echo "test:lint lib:lint::" ;;
    mtls-layer|gateway-vantage) echo "lab:test:oracle" ;;
    symptom-of-proxy) echo "test:scenarios:every_scenario_replays_to_the_hand_written_diagnosis lab:test:oracle" ;;
    target-path-first) echo "lab:test:trace_lab:two_faults lab:test:oracle" ;;
  esac
}

if [ "${1:-}" = --check-anchors ]; then
  status=0
  for m in "${mutations[@]}"; do
    copy_tree
    if apply "$m"; then echo "$m: anchor found"; else echo "$m: ANCHOR-MISSING"; status=1; fi
  done
  rm -rf "$scratch"
  exit $status
fi

selected=("$@")
[ ${#selected[@]} -eq 0 ] && selected=("${mutations[@]}")

# Every test set must pass on the unmutated copy, or "caught" would mean nothing.
copy_tree
declare -A baseline=()
for m in "${selected[@]}"; do
  for spec in $(tests_for "$m"); do
    [ -n "${baseline[$spec]:-}" ] && continue
    r=$(run "$spec")
    if [ -n "$r" ]; then echo "unmutated tree fails $spec: $r (see $log)" >&2; exit 1; fi
    baseline[$spec]=ok
  done
done

status=0
printf '%-22s %-70s %s\n' MUTATION WHAT RESULT
for m in "${selected[@]}"; do
  copy_tree
  if ! apply "$m" 2>>"$log"; then
    printf '%-22s %-70s %s\n' "$m" "$(describe "$m")" "ANCHOR-MISSING"; status=1; continue
  fi
  result=MISSED
  for spec in $(tests_for "$m"); do
    r=$(run "$spec")
    if [ -n "$r" ]; then result=$r; break; fi
  done
  case "$result" in
    MISSED|BUILD-FAILED) status=1 ;;
    *) result="caught by $result" ;;
  esac
  printf '%-22s %-70s %s\n' "$m" "$(describe "$m")" "$result"
done
rm -rf "$scratch"
exit $status
