#!/usr/bin/env bash
# The adversarial suite: hostile inputs against the real binary, counted.
#
#   configs  a corpus of mutated platform config dirs (from fixtures/configs/reference):
#            truncated files, flipped types, deleted keys, duplicate keys, huge values, deep
#            nesting, oversized files, bad UTF-8, and in place of a file a FIFO, /dev/zero, a
#            directory, a dangling symlink, a symlink loop, or mode 000 (run as nobody);
#            each variant runs `lint`, `show dns` and `plan qdrant` under a timeout.
#   others   every executable benches/adversarial/*.sh, each printing lines
#            `SECTION clear=N wrong=N hangs=N crashes=N` (hostile peers, hostile agents ...).
#
# A crash is an exit code >= 101 or death by a signal; a hang is a run past the timeout; a
# clear error is exit 2 with one line on stderr naming the file (or the target) at fault; a
# wrong answer is anything else that should not happen (exit 0/1 where the input cannot be
# read, exit 3 for a config problem, an error that names nothing, the admin password in any
# output, duplicate keys read unlike jq). Prints a table; exit 1 unless wrong, hangs and crashes
# are all zero.
#
# usage: benches/adversarial.sh [path/to/phoenix-doctor]     (env: TIMEOUT=10, STRIDE=45)
# Sends no packet: every command here reads files only.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-target/debug/phoenix-doctor}")
[ -x "$bin" ] || { echo "build first: cargo build" >&2; exit 2; }
timeout_s=${TIMEOUT:-10}
stride=${STRIDE:-45} # every STRIDE-th scalar of a file is mutated
ref=fixtures/configs/reference
canary='NewKick@$$2025' # the reference's Portainer admin password: never in any output

work=$(mktemp -d)
chmod 755 "$work"
trap 'chmod -R u+rwX "$work" 2>/dev/null; rm -rf "$work"' EXIT
as_nobody=()
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    as_nobody=(setpriv --reuid 65534 --regid 65534 --clear-groups)
fi

clear=0 wrong=0 hangs=0 crashes=0 answered=0 variants=0
wrong_list=()

# run_one VARIANT_DIR FILE_NAME MUST_FAIL [AS_NOBODY]
run_one() {
    local dir=$1 file=$2 must_fail=$3 nobody=${4:-}
    variants=$((variants + 1))
    local pre=()
    [ -n "$nobody" ] && pre=("${as_nobody[@]}")
    local cmd rc err out
    for cmd in "lint" "show dns" "plan qdrant"; do
        # shellcheck disable=SC2086
        out=$(timeout -k 2 "$timeout_s" "${pre[@]}" "$bin" $cmd --config-dir "$dir/etc" \
            --stacks-dir "$dir/stacks" --no-color 2>"$work/err" </dev/null)
        rc=$?
        err=$(cat "$work/err")
        local what="$(basename "$dir") $cmd"
        if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
            hangs=$((hangs + 1)); wrong_list+=("HANG  $what")
        elif [ "$rc" -ge 101 ]; then
            crashes=$((crashes + 1)); wrong_list+=("CRASH $what (exit $rc): ${err:0:200}")
        elif [[ "$out$err" == *"$canary"* ]]; then
            wrong=$((wrong + 1)); wrong_list+=("SECRET $what")
        elif [ "$rc" = 2 ]; then
            if [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] && [[ "$err" == "phoenix-doctor: "* ]] &&
                { [[ "$err" == *"$file"* ]] || [[ "$err" == *"target"* ]]; }; then
                clear=$((clear + 1))
            else
                wrong=$((wrong + 1)); wrong_list+=("UNCLEAR $what: ${err:0:200}")
            fi
        elif [ "$must_fail" = 1 ]; then
            wrong=$((wrong + 1)); wrong_list+=("ANSWERED $what (exit $rc) from an unreadable input")
        elif [ "$rc" = 0 ] || [ "$rc" = 1 ]; then
            answered=$((answered + 1))
        else
            wrong=$((wrong + 1)); wrong_list+=("EXIT$rc $what: ${err:0:200}")
        fi
    done
}

new_variant() { # -> prints the new dir (a copy of the reference tree)
    local d
    d=$(mktemp -d "$work/v.XXXXXX") && chmod 755 "$d" && cp -r "$ref/etc" "$ref/stacks" "$d/"
    echo "$d"
}
finish() { chmod -R u+rwX "$1" 2>/dev/null; rm -rf "$1"; }

files=(etc/phoenix_hypervisor_config.json etc/phoenix_lxc_configs.json etc/phoenix_vm_configs.json
    etc/certificate-manifest.json stacks/qdrant_service/phoenix.json)

# 1. Structured mutations with jq: for every STRIDE-th scalar, change its type, delete it,
#    or make it huge.
for f in "${files[@]}"; do
    mapfile -t paths < <(jq -c '[paths(scalars)] | to_entries[] | select(.key % '"$stride"' == 0) | .value' "$ref/$f")
    for p in "${paths[@]}"; do
        for m in 'setpath($p; 12345)' 'setpath($p; [])' 'setpath($p; {})' 'setpath($p; null)' \
            'setpath($p; "not an address")' 'delpaths([$p])' 'delpaths([$p[:-1]])' \
            'setpath($p; "x" * 200000)'; do
            d=$(new_variant)
            jq --argjson p "$p" "$m" "$ref/$f" >"$d/$f" 2>/dev/null || { finish "$d"; continue; }
            run_one "$d" "$(basename "$f")" 0
            finish "$d"
        done
    done
done

# 2. Duplicate keys: members of the hypervisor file, and whole LXC entries, repeated with other
#    values before the real ones. The answer must equal the one for the jq-normalised file
#    (jq keeps the first one's place and the last one's value).
dup_check() { # FILE(relative) SED_SCRIPT LABEL
    local f=$1 script=$2 label=$3 d norm a b
    d=$(new_variant)
    sed "$script" "$ref/$f" >"$d/$f"
    run_one "$d" "$(basename "$f")" 0
    norm=$(new_variant)
    if jq . "$d/$f" >"$norm/$f" 2>/dev/null; then
        a=$("$bin" show dns --config-dir "$d/etc" 2>&1)
        b=$("$bin" show dns --config-dir "$norm/etc" 2>&1)
        if [ "$a" != "$b" ]; then
            wrong=$((wrong + 1)); wrong_list+=("DUPKEY $label read unlike jq")
        fi
    fi
    finish "$d"; finish "$norm"
}
hyp=etc/phoenix_hypervisor_config.json
for line in $(grep -n '^        "[a-z_]*": "' "$ref/$hyp" | head -8 | cut -d: -f1); do
    dup_check "$hyp" "${line}{h;s/\": \".*/\": \"shadowed\",/;G}" "$hyp:$line"
done
lxc=etc/phoenix_lxc_configs.json
for id in $(jq -r '.lxc_configs | keys[]' "$ref/$lxc" | head -8); do
    dup_check "$lxc" "/^        \"$id\": {/i\\        \"$id\": {\"name\": \"Shadow-$id\", \"network_config\": {\"ip\": \"10.0.0.250/24\"}}," "lxc $id"
done

# 3. Byte-level damage: truncations, bad UTF-8, deep nesting, an oversized file.
for f in "${files[@]}"; do
    size=$(stat -c %s "$ref/$f")
    for cut in 0 1 $((size / 3)) $((size / 2)) $((size - 2)); do
        d=$(new_variant)
        head -c "$cut" "$ref/$f" >"$d/$f"
        run_one "$d" "$(basename "$f")" 1
        finish "$d"
    done
    d=$(new_variant)
    { printf '\xff\xfe'; cat "$ref/$f"; } >"$d/$f"
    run_one "$d" "$(basename "$f")" 1
    finish "$d"
done
d=$(new_variant)
{ head -c 100000 /dev/zero | tr '\0' '['; } >"$d/etc/phoenix_lxc_configs.json"
run_one "$d" phoenix_lxc_configs.json 1
finish "$d"
d=$(new_variant)
{ printf '{"lxc_configs": {}, "pad": "'; head -c $((17 << 20)) /dev/zero | tr '\0' 'a'; printf '"}'; } \
    >"$d/etc/phoenix_lxc_configs.json"
run_one "$d" phoenix_lxc_configs.json 1
finish "$d"

# 4. Something else in place of a file: FIFO, /dev/zero, a directory, a dangling symlink, a
#    loop, mode 000 (as nobody). The site file and the Traefik template too.
special=("${files[@]}" etc/phoenix-doctor.toml etc/traefik/traefik.yml.template)
for f in "${special[@]}"; do
    for kind in fifo zero dir dangling loop mode000; do
        [ "$kind" = mode000 ] && [ ${#as_nobody[@]} = 0 ] && continue
        d=$(new_variant)
        rm -f "$d/$f"
        case $kind in
            fifo) mkfifo "$d/$f" ;;
            zero) ln -s /dev/zero "$d/$f" ;;
            dir) mkdir "$d/$f" ;;
            dangling) ln -s "$d/nowhere" "$d/$f" ;;
            loop) ln -s "$d/$f" "$d/$f" ;;
            mode000)
                cp "$ref/$f" "$d/$f" 2>/dev/null || echo '[ports]' >"$d/$f"
                chmod -R a+rX "$d"
                chmod 000 "$d/$f"
                ;;
        esac
        # A missing optional file is fine when the platform treats it as absent: a dangling
        # symlink at an optional path may be read as absent; everything else must fail.
        must=1
        case "$kind:$f" in
            dangling:etc/certificate-manifest.json | dangling:etc/phoenix-doctor.toml | dangling:etc/traefik/*) must=0 ;;
        esac
        run_one "$d" "$(basename "$f")" "$must" "$([ "$kind" = mode000 ] && echo 1)"
        finish "$d"
    done
done

printf 'configs clear=%d wrong=%d hangs=%d crashes=%d answered=%d variants=%d\n' \
    "$clear" "$wrong" "$hangs" "$crashes" "$answered" "$variants" >"$work/sections"

# Other sections, from other scripts.
for s in benches/adversarial/*.sh; do
    [ -x "$s" ] || continue
    "$s" "$bin" 2>"$work/section-err" | grep -E '^[A-Za-z0-9_-]+ clear=' >>"$work/sections" ||
        printf '%s clear=0 wrong=1 hangs=0 crashes=0 (script failed: %s)\n' \
            "$(basename "$s" .sh)" "$(head -c 200 "$work/section-err" | tr '\n' ' ')" >>"$work/sections"
done

printf '%-14s %8s %8s %8s %8s\n' SECTION CLEAR WRONG HANGS CRASHES
tc=0 tw=0 th=0 tx=0
while read -r name rest; do
    c=$(grep -o 'clear=[0-9]*' <<<"$rest" | cut -d= -f2)
    w=$(grep -o 'wrong=[0-9]*' <<<"$rest" | cut -d= -f2)
    h=$(grep -o 'hangs=[0-9]*' <<<"$rest" | cut -d= -f2)
    x=$(grep -o 'crashes=[0-9]*' <<<"$rest" | cut -d= -f2)
    printf '%-14s %8d %8d %8d %8d\n' "$name" "${c:-0}" "${w:-0}" "${h:-0}" "${x:-0}"
    tc=$((tc + ${c:-0})) tw=$((tw + ${w:-0})) th=$((th + ${h:-0})) tx=$((tx + ${x:-0}))
done <"$work/sections"
printf '%-14s %8d %8d %8d %8d\n' TOTAL "$tc" "$tw" "$th" "$tx"
echo "configs: $variants variants x 3 commands; $answered runs answered (exit 0/1) from a still-valid config"
for l in "${wrong_list[@]}"; do echo "  $l"; done
[ $((tw + th + tx)) = 0 ]
