#!/usr/bin/env bash
# Cost of the static commands (nothing is sent) as the platform grows: platforms of 100, 1,000
# and 5,000 extra guests generated from the reference config by benches/gen_platform.py (N LXCs
# and N/10 VMs with firewall rules, Traefik services and stacks, and the deployed files the
# generators write, with four hand edits, for `drift --deployed`), plus 5,000 LXCs in one
# clone_from_ctid chain that ends in a loop. For each command: the median wall time of R runs
# (process start included), the median CPU time (user + system: what the command costs whatever
# else the machine runs) and the peak memory (max RSS from /usr/bin/time -v); then the growth
# exponents, the log-log slopes of time from 100 to 1,000 and from 1,000 to 5,000 guests (1 =
# linear, 2 = quadratic), of wall and of CPU time; and the load average. Targets
# (docs/benchmarks.md): under 1 s and 100 MB at 5,000, exponent (1,000 → 5,000) under 1.3, held
# against CPU time (on a shared machine the wall time also measures the others' load).
# usage: benches/static_scale.sh [path/to/phoenix-doctor] [runs]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(realpath "${1:-$here/../target/release/phoenix-doctor}")
runs=${2:-3}
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (GNU time)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

sizes=(100 1000 5000)
for n in "${sizes[@]}"; do
    python3 "$here/gen_platform.py" "$work/g$n" --guests "$n" --deployed "$bin"
done
python3 "$here/gen_platform.py" "$work/chain" --clone-chain 5000

# DEPLOYED stands for the platform's deployed tree.
commands=("lint" "plan qdrant" "show dns" "show firewall" "show routes" "drift --deployed DEPLOYED")

# median: the middle of the numbers on stdin
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

# measure DIR CMD... -> "<median wall ms> <max rss kB> <median cpu ms>"
measure() {
    local dir=$1 rss=0 s e kb walls="" cpus="" a
    shift
    local args=()
    for a in "$@"; do
        if [ "$a" = DEPLOYED ]; then args+=("$dir/deployed"); else args+=("$a"); fi
    done
    set -- "${args[@]}"
    for _ in $(seq "$runs"); do
        s=$(date +%s%N)
        /usr/bin/time -v -o "$work/time" "$bin" --config-dir "$dir/etc" "$@" >/dev/null 2>&1 || true
        e=$(date +%s%N)
        walls+="$(( (e - s) / 1000000 ))"$'\n'
        cpus+="$(awk -F': ' '/User time|System time/ {t += $2} END {printf "%d", t * 1000}' "$work/time")"$'\n'
        kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time")
        if [ "$kb" -gt "$rss" ]; then rss=$kb; fi
    done
    echo "$(printf '%s' "$walls" | median) $rss $(printf '%s' "$cpus" | median)"
}

printf '%-8s %-24s %9s %9s %9s\n' guests command "time ms" "cpu ms" "peak MB"
declare -A t cput
over=0
for n in "${sizes[@]}"; do
    for c in "${commands[@]}"; do
        # shellcheck disable=SC2086
        read -r ms kb cpu < <(measure "$work/g$n" $c)
        t["$n $c"]=$ms
        cput["$n $c"]=$cpu
        mb=$(awk -v k="$kb" 'BEGIN {printf "%.1f", k / 1024}')
        flag=""
        if [ "$n" = 5000 ] && { [ "$cpu" -ge 1000 ] || [ "$kb" -ge 102400 ]; }; then
            flag="  over target"
            over=1
        fi
        printf '%-8s %-24s %9d %9d %9s%s\n' "$n" "${c% DEPLOYED}" "$ms" "$cpu" "$mb" "$flag"
    done
done
for c in "lint" "show dns"; do
    # shellcheck disable=SC2086
    read -r ms kb cpu < <(measure "$work/chain" $c)
    printf '%-8s %-24s %9d %9d %9s  (5,000-long clone_from_ctid chain ending in a loop)\n' \
        chain "$c" "$ms" "$cpu" "$(awk -v k="$kb" 'BEGIN {printf "%.1f", k / 1024}')"
done
echo
echo "growth exponents (log-log slopes) 100 → 1,000 and 1,000 → 5,000 guests, of wall time and"
echo "of CPU time (the target applies to CPU time, which other load on the machine does not inflate)"
slope() { awk -v a="$1" -v b="$2" -v r="$3" 'BEGIN {if (a < 1) a = 1; printf "%.2f", log(b / a) / log(r)}'; }
for c in "${commands[@]}"; do
    low=$(slope "${t["100 $c"]}" "${t["1000 $c"]}" 10)
    high=$(slope "${t["1000 $c"]}" "${t["5000 $c"]}" 5)
    clow=$(slope "${cput["100 $c"]}" "${cput["1000 $c"]}" 10)
    chigh=$(slope "${cput["1000 $c"]}" "${cput["5000 $c"]}" 5)
    flag=""
    if awk -v s="$chigh" 'BEGIN {exit !(s >= 1.3)}'; then flag="  over target"; over=1; fi
    printf '  %-24s wall %s  %s   cpu %s  %s%s\n' "${c% DEPLOYED}" "$low" "$high" "$clow" "$chigh" "$flag"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$over"
