#!/usr/bin/env bash
# The hostile-peers section of the adversarial suite: ~70 hostile peers on 127.0.70-72.x (loopback
# only), each probed once with `phoenix-doctor probe ... --timeout 1s --format json` under an
# outer `timeout`. Every case names the exit codes that are a correct answer, written by hand from
# the peer's behaviour (an echoed DNS query is no answer, a body that trickles past the timeout is
# not ok, a 200-certificate chain is no handshake ...).
#
# Prints one line: `peers clear=N wrong=N hangs=N crashes=N`
#   clear   the probe ended in time with an accepted exit code and a JSON observation
#   wrong   another exit code, or no JSON observation (a usage error, exit 2: one line on stderr)
#   hangs   still running 5 s after its 1 s timeout (killed)
#   crashes a panic, a signal, or exit 101
# Details of every case that is not clear go to stderr. Exit status 0 when only clear cases.
#
# Usage: benches/adversarial/peers.sh [path/to/phoenix-doctor]   (default: builds target/release)
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-}
if [ -z "$bin" ]; then
  (cd "$root" && cargo build --release --quiet) || exit 2
  bin="$root/target/release/phoenix-doctor"
fi
for t in python3 openssl timeout; do
  command -v "$t" >/dev/null || { echo "peers.sh: needs $t" >&2; exit 2; }
done

work=$(mktemp -d)
cleanup() { [ -n "${srv:-}" ] && kill "$srv" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT INT TERM

# a self-signed leaf, and the same leaf 200 times: a chain far beyond any handshake limit
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=h.example.test -addext subjectAltName=DNS:h.example.test \
  -addext basicConstraints=critical,CA:FALSE -addext keyUsage=critical,digitalSignature \
  -addext extendedKeyUsage=serverAuth \
  -keyout "$work/key.pem" -out "$work/leaf.pem" 2>/dev/null || exit 2
for _ in $(seq 200); do cat "$work/leaf.pem"; done > "$work/chain200.pem"

python3 "$here/hostile_peers.py" "$work/chain200.pem" "$work/key.pem" "$work/leaf.pem" --list \
  > "$work/peers.txt" 2>"$work/peers.err" &
srv=$!
for _ in $(seq 100); do grep -q '^ready' "$work/peers.txt" 2>/dev/null && break; sleep 0.1; done
grep -q '^ready' "$work/peers.txt" || { echo "peers.sh: peers did not start" >&2; cat "$work/peers.err" >&2; exit 2; }

addr() { # group name -> address
  local n; n=$(awk -v g="$1" -v k="$2" '$1==g && $3==k {print $2}' "$work/peers.txt")
  [ -n "$n" ] || { echo "peers.sh: no peer $1/$2" >&2; exit 2; }
  case $1 in http) echo "127.0.70.$n";; dns) echo "127.0.71.$n";; tls) echo "127.0.72.$n";; esac
}

clear=0 wrong=0 hangs=0 crashes=0
# check NAME ACCEPTED-CODES -- probe args...
check() {
  local name=$1 ok=$2; shift 3
  local out="$work/out" err="$work/err" code
  timeout -k 1 6 "$bin" probe "$@" --timeout 1s --format json >"$out" 2>"$err"
  code=$?
  if [ "$code" = 124 ] || [ "$code" = 137 ]; then
    hangs=$((hangs + 1)); echo "HANG   $name: $*" >&2
  elif [ "$code" -ge 101 ] || grep -q panicked "$err"; then
    crashes=$((crashes + 1)); echo "CRASH  $name: exit $code: $(head -c 300 "$err")" >&2
  elif [[ ",$ok," == *",$code,"* ]] && { [ "$code" = 2 ] && [ "$(wc -l <"$err")" = 1 ] ||
      python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$out" 2>/dev/null; }; then
    clear=$((clear + 1))
  else
    wrong=$((wrong + 1))
    echo "WRONG  $name: exit $code (accepted: $ok): $(grep -o '"reason": "[^"]*"' "$out" | head -1) $(head -c 200 "$err")" >&2
  fi
}

http() { local a; a=$(addr http "$1"); check "http/$1" "$2" -- http "http://$a:8000/healthz"; }
# plain HTTP: only a complete 2xx answer is ok
http silent 1;            http rst 1;               http fin 1
http fin-after-read 1;    http garbage 1;           http garbage-after-read 1
http trickle-head 1;      http trickle-body 1;      http stall-body 1
http huge-headers 1;      http huge-header-line 1;  http huge-body 0
http endless-chunked 0;   http endless-chunked-slow 1; http bad-chunk 1
http short-body 1;        http no-status-line 1;    http status-999 1
http neg-length 1;        http dup-length 1;        http continue-forever 1
http redirect 1;          http nginx-502 1;         http traefik-404 1
http esc-body 0;          http binary-header 0;     http slowloris-headers 1
http half-close 1;        http http2-preface 1;     http ok 0
check tcp/silent 0 -- tcp "$(addr http silent):8000"
check tcp/rst 0,1 -- tcp "$(addr http rst):8000"
check tcp/closed 1 -- tcp "127.0.70.250:8000"

tls() { local a; a=$(addr tls "$1"); check "tls/$1" "$2" -- tls "$a:8443" --sni h.example.test; }
https() {
  local a; a=$(addr tls "$1")
  check "https/$1" "$2" -- http https://h.example.test:8443/ --resolve "h.example.test:$a" --ca "$work/leaf.pem"
}
# TLS: only a completed handshake is ok (no --ca: the chain is shown, not verified)
tls tls-silent 1;         tls tls-garbage 1;        tls tls-http400 1
tls tls-alert 1;          tls tls-huge-record 1;    tls tls-trickle-hello 1
tls tls-rst 1;            tls tls-fin 1;            tls tls-200-chain 1
tls tls-ok 0
check mtls/tls-ok 1 -- mtls "$(addr tls tls-ok):8443" --sni h.example.test
https tls-silent 1;       https tls-garbage 1;      https tls-http400 1
https tls-200-chain 1;    https tls-ok 0;           https tls-slow-handshake 1
https tls-trickle-body 1; https tls-endless-chunked 0; https tls-stall-after-handshake 1
https tls-close-after-handshake 1

dns() {
  local a; a=$(addr dns "$1")
  check "dns/$1" "$2" -- dns q.example.test --server "$a:5353" --expect 127.0.0.9 \
    --hosts-file /dev/null --resolv-conf /dev/null
}
# DNS: only an answer (QR=1, our id and question) with 127.0.0.9 for q.example.test is ok
dns dns-silent 1;         dns dns-echo 1;           dns dns-garbage 1
dns dns-short 1;          dns dns-wrong-id 1;       dns dns-other-owner 1
dns dns-big 0;            dns dns-tc-tcp-silent 1;  dns dns-tc-tcp-garbage 1
dns dns-tc-tcp-short 1;   dns dns-other-question 1; dns dns-ptr-loop 1
dns dns-rcode-15 1;       dns dns-ancount-lie 1;    dns dns-nxdomain 1
dns dns-servfail 1;       dns dns-qr0-then-answer 0; dns dns-wrong-then-answer 0
dns dns-cname-chain 0;    dns dns-extra-owner-and-answer 0; dns dns-ok 0
check dns/invalid-name 2 -- dns 'a..example.test' --server "$(addr dns dns-ok):5353"

echo "peers clear=$clear wrong=$wrong hangs=$hangs crashes=$crashes"
[ $((wrong + hangs + crashes)) = 0 ]
