#!/usr/bin/env bash
# Build the agent binary that runs inside guests: no lab (`--no-default-features`), stripped
# (the release profile), fully static so it runs whatever the guest's libc. With the musl target
# installed (`rustup target add x86_64-unknown-linux-musl`) it is a musl build; otherwise a
# static glibc build (`-C target-feature=+crt-static`), which is safe here because the agent never
# resolves names through the system (no getaddrinfo, no NSS): every lookup it makes goes to an
# explicit nameserver.
#
# Prints the path of the binary on stdout (progress goes to stderr). Arguments go to `cargo build`.
# PD_AGENT_GLIBC=1 forces the static glibc build even when the musl target is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

# The musl build needs the target (rustup) and a C compiler for it (ring has C and assembly):
# `musl-gcc` from Debian's musl-tools.
musl_cc=$(command -v x86_64-linux-musl-gcc || command -v musl-gcc || true)
if [ -z "${PD_AGENT_GLIBC:-}" ] && [ -n "$musl_cc" ] \
  && rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
  target=x86_64-unknown-linux-musl
  export CC_x86_64_unknown_linux_musl="$musl_cc"
else
  target=x86_64-unknown-linux-gnu
fi
export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static"
export CARGO_INCREMENTAL=0
cargo build --release --no-default-features --target "$target" "$@" >&2
bin="target/$target/release/phoenix-doctor"
# A static binary has no program interpreter: refuse to hand out anything else.
if command -v file >/dev/null 2>&1 && ! file -L "$bin" | grep -q "static"; then
  echo "build-agent: $bin is not statically linked: $(file -L "$bin")" >&2
  exit 1
fi
echo "$PWD/$bin"
