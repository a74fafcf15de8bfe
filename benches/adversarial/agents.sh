#!/usr/bin/env bash
# The hostile-agent section of the adversarial suite. Two kinds of cases:
#   jobs:       hostile jobs on `phoenix-doctor agent`'s stdin (garbage, truncated, huge, /dev/zero,
#               100k steps, limits out of range, NUL/ESC, steps outside the scope ...);
#   transports: `trace qdrant` against the built-in lab with hostile stand-in transports and agents
#               (yes, /dev/zero, sleep forever, grandchildren holding the pipe, garbage, truncated or
#               huge JSON, wrong ids and versions, ESC in stderr, exit codes, signals, qm JSON ...).
# Everything runs in private network and PID namespaces (`unshare -rn --pid --fork --mount-proc`):
# nothing can leave the machine, and whatever a hostile transport leaves behind dies with the suite.
# Each case is classified:
#   clear   the expected, clean outcome (a refusal with exit 2 and one line, `cannot-judge` exit 3
#           for every step of a hostile guest, out-of-scope for a step outside the scope ...);
#   wrong   any other outcome (a verdict drawn from a hostile answer, a command run on the far side,
#           a raw ESC on the terminal, a leftover process);
#   hangs   not finished within the budget plus 10 s;
#   crashes exit 101 (panic) or killed by a signal.
# Prints one line: `agents clear=N wrong=N hangs=N crashes=N`; details of non-clear cases go to
# stderr. usage: benches/adversarial/agents.sh [path/to/phoenix-doctor]
set -uo pipefail
bin=$(realpath "${1:-target/debug/phoenix-doctor}")
[ -x "$bin" ] || { echo "build first: cargo build" >&2; exit 2; }
exec unshare -rn --pid --fork --mount-proc bash -s "$bin" <<'INNER'
set -uo pipefail
bin=$1
ip link set lo up
work=$(mktemp -d)
lab=$work/lab
"$bin" lab --dir "$lab" >/dev/null 2>&1 &
labpid=$!
trap 'kill $labpid 2>/dev/null; wait $labpid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 200); do [ -f "$lab/etc/phoenix-doctor.toml" ] && break; sleep 0.05; done
sleep 0.3
# Guests go through --via, not the lab's simulated vantages (the trust paths stay).
python3 - "$lab/etc/phoenix-doctor.toml" <<'PY'
import re, sys
p = sys.argv[1]
text = open(p).read()
# drop every [vantage."..."] table (and a bare [vantage] table)
text = re.sub(r'(?ms)^\[vantage(\.[^\]]*)?\]\n.*?(?=^\[|\Z)', '', text)
open(p, 'w').write(text)
PY

clear=0; wrong=0; hangs=0; crashes=0; leaked=0
verdict() { # name kind detail
  case $2 in
    clear) clear=$((clear + 1)) ;;
    wrong) wrong=$((wrong + 1)); echo "agents: WRONG $1: $3" >&2 ;;
    hang) hangs=$((hangs + 1)); echo "agents: HANG $1" >&2 ;;
    crash) crashes=$((crashes + 1)); echo "agents: CRASH $1: $3" >&2 ;;
  esac
}
# exit status → hang / crash / "" (a normal exit)
abnormal() {
  case $1 in
    124|137) echo hang ;;
    101) echo crash ;;
    *) if [ "$1" -gt 128 ]; then echo crash; fi ;;
  esac
}
has_esc() { LC_ALL=C grep -q $'\x1b' "$@"; }

# ---------- jobs on the agent's stdin ----------
job() { # name expect(refuse|answer) file [jq-check]
  local name=$1 expect=$2 input=$3 check=${4:-}
  timeout 40 "$bin" agent <"$input" >"$work/out" 2>"$work/err"
  local rc=$?
  local a; a=$(abnormal $rc)
  if [ -n "$a" ]; then verdict "job $name" "$a" "exit $rc: $(head -c 300 "$work/err")"; return; fi
  if has_esc "$work/out" "$work/err"; then verdict "job $name" wrong "raw ESC in the output"; return; fi
  case $expect in
    refuse)
      if [ $rc -eq 2 ] && [ ! -s "$work/out" ] && [ "$(wc -l <"$work/err")" -le 1 ] && grep -q '^phoenix-doctor.*agent' "$work/err"; then
        verdict "job $name" clear
      else
        verdict "job $name" wrong "exit $rc, stdout $(wc -c <"$work/out") bytes, stderr: $(head -c 300 "$work/err")"
      fi ;;
    answer)
      if [ $rc -eq 0 ] && jq -e "$check" "$work/out" >/dev/null 2>&1; then
        verdict "job $name" clear
      else
        verdict "job $name" wrong "exit $rc: $(head -c 300 "$work/out") $(head -c 300 "$work/err")"
      fi ;;
  esac
}
J=$work/job.json
mk() { printf '%s' "$1" >"$J"; }
step() { # id addr [deps-json]
  printf '{"id":"%s","hop":"h","from":"lxc:102","to":"x","layer":"tcp","probe":{"kind":"tcp","addr":"%s"},"expect":"","provenance":[],"depends_on":%s,"through":[]}' "$1" "$2" "${3:-[]}"
}
wrap() { # steps-json [scope-json] [extra]
  printf '{"version":2,"timeout_ms":300,"budget_ms":5000,"body_limit":1024,"scope":%s,%s"steps":[%s]}' "${2:-[\"127.0.0.0/8\"]}" "${3:-}" "$1"
}
: >"$J"; job empty refuse "$J"
mk 'garbage ]]] not json'; job garbage refuse "$J"
mk '{"version":2,"timeout_ms":300,"steps":[{"id":'; job truncated refuse "$J"
head -c 40000000 /dev/zero >"$J"; job dev-zero-40MB refuse "$J"
job dev-zero-stream refuse /dev/zero
mk "$(wrap "$(step a 127.0.0.1:9)" '["127.0.0.0/8"]' | sed 's/"version":2/"version":1/')"; job old-version refuse "$J"
mk "$(wrap "$(step a 127.0.0.1:9)" '["127.0.0.0/8"]' | sed 's/"version":2/"version":99999999999999999999/')"; job huge-version refuse "$J"
mk "$(wrap "$(step a 127.0.0.1:9)" | sed 's/"body_limit":1024/"body_limit":1000000000000/')"; job huge-body-limit refuse "$J"
mk "$(wrap "$(step a 127.0.0.1:9)" | sed 's/"timeout_ms":300/"timeout_ms":0/')"; job zero-timeout refuse "$J"
mk "$(wrap "$(step a 127.0.0.1:9)" | sed 's/"timeout_ms":300/"timeout_ms":-5/')"; job negative-timeout refuse "$J"
mk "$(wrap "$(step a 127.0.0.1:9)" | sed 's/"budget_ms":5000/"budget_ms":99999999999999/')"; job huge-budget refuse "$J"
mk "$(wrap "$(step a 127.0.0.1:9)" 'null')"; job no-scope refuse "$J"
python3 -c 'print("[" * 200000 + "]" * 200000)' >"$J"; job deep-nesting refuse "$J"
s1=$(step a 127.0.0.1:9)
python3 - "$s1" >"$J" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
steps = []
for i in range(100000):
    t = dict(s); t["id"] = f"s{i}"; steps.append(t)
print(json.dumps({"version": 2, "timeout_ms": 300, "budget_ms": 5000, "body_limit": 1024,
                  "scope": ["127.0.0.0/8"], "steps": steps}))
PY
job 100k-steps refuse "$J"
printf '\377\376\000\033[2J' >"$J"; job binary refuse "$J"
# jobs an agent runs, with the expected answer
mk "$(wrap "$(step 'esc-\u001b]0;pwned\u0007-nul-\u0000' 127.0.0.1:9)")"
job nul-esc-ids answer "$J" '.observations[0].step | contains("\u001b")'
mk "$(wrap "$(step out 8.8.8.8:53)")"; job outside-scope answer "$J" '.observations[0].outcome == "out-of-scope"'
mk "$(wrap "$(step mapped '[::ffff:8.8.8.8]:53')" '["::/0"]')"
job mapped-v4 answer "$J" '.observations[0].outcome == "out-of-scope"'
mk "$(wrap "$(step meta 169.254.169.254:80)" '["127.0.0.0/8"]')"
job metadata answer "$J" '.observations[0].outcome == "out-of-scope"'
mk "$(wrap "$(step a 127.0.0.1:9),$(step a 127.0.0.1:9)")"; job duplicate-ids answer "$J" '.observations | length == 2'
mk "$(wrap "$(step x 127.0.0.1:9 '["y"]'),$(step y 127.0.0.1:9 '["x"]')")"
job cycle answer "$J" '[.observations[].outcome] == ["blocked","blocked"]'
mk "$(wrap "$(step x 127.0.0.1:9 '["ghost"]')")"; job unknown-prereq answer "$J" '.observations[0].outcome == "blocked"'
python3 - "$s1" >"$J" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
steps = []
for i in range(10000):
    t = dict(s); t["id"] = f"s{i}"; t["probe"] = dict(s["probe"]); t["probe"]["addr"] = f"127.0.{1 + i // 250 % 8}.{1 + i % 250}:9"
    steps.append(t)
print(json.dumps({"version": 2, "timeout_ms": 1000, "budget_ms": 30000, "body_limit": 1024,
                  "scope": ["127.0.0.0/8"], "steps": steps}))
PY
prlimit --nofile=256 -- true 2>/dev/null && pl=(prlimit --nofile=256 --) || pl=()
timeout 60 "${pl[@]}" "$bin" agent <"$J" >"$work/out" 2>"$work/err"; rc=$?
a=$(abnormal $rc)
if [ -n "$a" ]; then verdict "job 10k-steps-256-fds" "$a" "exit $rc"
elif jq -e '[.observations[] | select(.outcome != "failed")] | length == 0' "$work/out" >/dev/null; then verdict "job 10k-steps-256-fds" clear
else verdict "job 10k-steps-256-fds" wrong "$(jq -c '[.observations[] | select(.outcome != "failed")][0]' "$work/out")"; fi

# ---------- hostile transports and agents under `trace qdrant` ----------
T=$work/t
mkdir -p "$T"
tscript() { printf '#!/bin/sh\n%s\n' "$2" >"$T/$1"; chmod 755 "$T/$1"; }
answer() { printf '%s' "$1" | sed 's/"/\\"/g'; }
trace() { # name lxc-template vm-template [agent-path] [extra check cmd]
  local name=$1 lxc=$2 vm=$3 agent=${4:-$bin}
  local started=$SECONDS
  timeout 20 "$bin" trace qdrant --config-dir "$lab/etc" --scope 127.0.0.0/8 --format json \
    --timeout 700ms --budget 5s --via "lxc=$lxc" --via "vm=$vm" --agent-path "$agent" \
    >"$work/out" 2>"$work/err"
  local rc=$?
  local a; a=$(abnormal $rc)
  if [ -n "$a" ]; then verdict "transport $name" "$a" "exit $rc: $(head -c 300 "$work/err")"; return; fi
  if has_esc "$work/out" "$work/err"; then verdict "transport $name" wrong "raw ESC on the terminal"; return; fi
  if [ $((SECONDS - started)) -gt 9 ]; then verdict "transport $name" wrong "took $((SECONDS - started)) s with --budget 5s"; return; fi
  # transport processes left behind by this case (the PID namespace holds only the suite's own)
  local leftovers
  leftovers=$(pgrep -f "sleep 1000[0-9]" | wc -l)
  if [ "$leftovers" -gt "$leaked" ]; then
    verdict "transport $name" wrong "$((leftovers - leaked)) transport processes survived"
    leaked=$leftovers
    return
  fi
  # every guest step cannot-judge (or blocked behind one), verdict cannot-judge, exit 3
  if [ $rc -eq 3 ] && jq -e '.verdict == "cannot-judge" and ([.steps[] | select(.from != "host") | select(.verdict != "cannot-judge" and .verdict != "blocked")] | length == 0)' "$work/out" >/dev/null 2>&1; then
    verdict "transport $name" clear
  else
    verdict "transport $name" wrong "exit $rc: $(jq -c '[.verdict, [.steps[] | select(.from != "host") | [.id, .verdict, .actual]][0:2]]' "$work/out" 2>/dev/null | head -c 400)"
  fi
}
case_t() { # name script-body : the same stand-in serves LXCs and VMs (exec style)
  tscript "$1" "$2"
  trace "$1" "$T/$1 {id} --" "$T/$1 {id} --"
}
case_t yes 'exec yes'
case_t dev-zero 'exec cat /dev/zero'
case_t sleep-forever 'exec sleep 10001'
case_t grandchild-sleeps 'sh -c "sleep 10002" & wait'
case_t grandchild-holds-stdout '(sleep 10003 &); echo "{}"; exit 0'
case_t closes-stdout-then-sleeps 'exec >&-; exec sleep 10004'
case_t stderr-flood 'yes "no agent" >&2'
case_t garbage 'cat >/dev/null; echo "garbage"; exit 0'
case_t empty 'cat >/dev/null; exit 0'
case_t truncated-json 'cat >/dev/null; printf "{\"version\":2,\"observations\":[{\"step\":"'
case_t huge-json 'cat >/dev/null; printf "{\"version\":2,\"observations\":[],\"x\":\""; head -c 60000000 /dev/zero | tr "\0" a; printf "\"}"'
case_t deep-json 'cat >/dev/null; python3 -c "print(\"[\" * 100000)"'
case_t wrong-ids 'cat >/dev/null; echo "{\"version\":2,\"observations\":[{\"step\":\"nope\",\"outcome\":\"ok\",\"message\":\"\",\"vantage\":{\"name\":\"x\",\"substituted\":false,\"via\":\"\"}}]}"'
case_t wrong-version 'cat >/dev/null; echo "{\"version\":1,\"observations\":[]}"'
case_t not-an-object 'cat >/dev/null; echo "[1e999999, null]"'
case_t invalid-utf8 'cat >/dev/null; printf "\377\376\375"'
case_t esc-in-stderr 'cat >/dev/null; printf "\033]0;pwned\007\033[2J\000 guest says no" >&2; exit 1'
case_t exit-1 'cat >/dev/null; echo "guest is not running" >&2; exit 1'
case_t exit-2 'cat >/dev/null; exit 2'
case_t exit-3 'cat >/dev/null; exit 3'
case_t exit-255 'cat >/dev/null; exit 255'
case_t killed-by-signal 'kill -9 $$'
case_t answer-then-hang 'cat >/dev/null; echo "{\"version\":2,\"observations\":[]}"; exec sleep 10005'
# qm guest exec with hostile JSON
case_qm() { tscript qm "$2"; trace "qm-$1" "$T/qm guest exec {id} --" "$T/qm guest exec {id} --"; }
case_qm not-exited 'cat >/dev/null; echo "{\"exited\":0}"'
case_qm out-truncated 'cat >/dev/null; echo "{\"exited\":1,\"exitcode\":0,\"out-truncated\":1,\"out-data\":\"{}\"}"'
case_qm garbage 'cat >/dev/null; echo "QEMU guest agent is not running"'
case_qm huge-exitcode 'cat >/dev/null; echo "{\"exited\":1,\"exitcode\":99999999999999,\"out-data\":\"\"}"'
case_qm endless 'printf "{\"exited\":1,\"exitcode\":0,\"out-data\":\""; exec yes x'
case_qm garbage-inside 'cat >/dev/null; echo "{\"exited\":1,\"exitcode\":0,\"out-data\":\"garbage\\u001b[2J\"}"'
# a hostile agent behind a working transport: the agent path itself
tscript pass 'shift 2; exec "$@"'
# Control: the same harness with a well-behaved transport and agent must see the lab healthy
# (otherwise every "clear" above could be the harness's own failure).
timeout 20 "$bin" trace qdrant --config-dir "$lab/etc" --scope 127.0.0.0/8 --format json \
  --timeout 700ms --budget 5s --via "lxc=$T/pass {id} --" --via "vm=$T/pass {id} --" \
  --agent-path "$bin" >"$work/out" 2>"$work/err"
if [ $? -eq 0 ] && jq -e '.verdict == "healthy" and ([.steps[] | select(.from != "host" and .vantage.substituted == false)] | length > 0)' "$work/out" >/dev/null; then
  verdict "control: a well-behaved agent" clear
else
  verdict "control: a well-behaved agent" wrong "the lab is not healthy through a working transport: $(jq -c .verdict "$work/out" 2>/dev/null) $(head -c 300 "$work/err")"
fi
trace agent-is-yes "$T/pass {id} --" "$T/pass {id} --" /usr/bin/yes
trace agent-is-sleep "$T/pass {id} --" "$T/pass {id} --" /bin/sleep
# injection through a wrapped ssh: nothing may run on the far side
tscript ssh 'shift; exec sh -c "$*"'
for wrap in "timeout 20" "env" "nice -n 1" "stdbuf -o0" "env LC_ALL=C"; do
  rm -f "$work/pwned"
  for ap in "/nonexistent/pd;touch $work/pwned" "/nonexistent/pd\$(touch $work/pwned)" "/nonexistent/pd\`touch $work/pwned\`"; do
    timeout 20 "$bin" trace qdrant --config-dir "$lab/etc" --scope 127.0.0.0/8 --format json \
      --timeout 700ms --budget 5s --via "lxc=$wrap $T/ssh lxc-{id}" --via "vm=$wrap $T/ssh vm-{id}" \
      --agent-path "$ap" >/dev/null 2>&1
  done
  if [ -e "$work/pwned" ]; then verdict "injection $wrap ssh" wrong "a command ran on the far side"; else verdict "injection $wrap ssh" clear; fi
done
echo "agents clear=$clear wrong=$wrong hangs=$hangs crashes=$crashes"
INNER
