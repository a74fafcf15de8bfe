# The real peers the test suite talks to: the command each provides and its Debian/Ubuntu
# package. Sourced by ./test (which installs the missing ones as root) and by .ci/run.
declare -A PKG=(
  [nginx]=nginx [dnsmasq]=dnsmasq-base [nft]=nftables [haproxy]=haproxy [socat]=socat
  [ip]=iproute2 [ss]=iproute2 [openssl]=openssl [curl]=curl [dig]=dnsutils [pgrep]=procps
  [unshare]=util-linux [setpriv]=util-linux [prlimit]=util-linux [cc]="gcc libc6-dev"
  [promtool]=prometheus [musl-gcc]=musl-tools
)
