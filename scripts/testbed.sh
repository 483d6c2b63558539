#!/usr/bin/env bash
# A multi-host test bed on one Linux machine: N emulated hosts, each a network namespace with
# its own hostname (a UTS namespace) and one address on a bridge, in a private test range that
# exists only inside the namespaces (the bridge itself has no address, so nothing reaches any
# other network). Needs root (CI runs as root) and iproute2.
#
#   scripts/testbed.sh up N [--rate 1gbit] [--delay 1ms]   make hosts 1..N (10.213.0.1 … 10.213.0.N)
#   scripts/testbed.sh exec I COMMAND...                   run COMMAND on host I
#   scripts/testbed.sh addr I                              print host I's address
#   scripts/testbed.sh down                                remove everything the bed made
#
# RINGTRAIN_TESTBED=NAME names the bed (default rt): several beds can exist at once, and
# `down` removes only NAME's. --rate shapes every host's link both ways with tbf (egress of
# each end of its veth pair); --delay adds netem delay where the kernel has netem (the script
# says so when it has not). `up` removes a previous bed of the same name first, and undoes
# what it made if it fails or is interrupted.
set -euo pipefail

name=${RINGTRAIN_TESTBED:-rt}
[[ $name =~ ^[a-z][a-z0-9]{0,5}$ ]] || { echo "testbed: RINGTRAIN_TESTBED must be 1-6 lowercase letters or digits, starting with a letter; got '$name'" >&2; exit 2; }
state=/run/ringtrain-testbed/$name
subnet=10.213.0

addr() { echo "$subnet.$1"; }
netns() { echo "${name}h$1"; }

need() {
  [[ $(id -u) == 0 ]] || { echo "testbed: needs root (network namespaces); run it as root, as CI does" >&2; exit 2; }
  command -v ip >/dev/null || { echo "testbed: needs iproute2 ('ip'); install it: apt-get install -y iproute2" >&2; exit 2; }
}

down() {
  if [[ -d $state ]]; then
    for uts in "$state"/uts-*; do
      [[ -e $uts ]] || continue
      umount "$uts" 2>/dev/null || true
      rm -f "$uts"
    done
  fi
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${name}h[0-9]+$" || true); do
    # Whatever still runs inside (a test that was killed) goes with its host.
    for pid in $(ip netns pids "$ns" 2>/dev/null || true); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns delete "$ns" 2>/dev/null || true
  done
  ip link delete "${name}br" 2>/dev/null || true
  rm -rf "$state"
}

shape() { # shape DEVICE [NETNS]: tbf at --rate, netem --delay before it when asked
  local dev=$1 ns=${2:-} run=()
  [[ -n $ns ]] && run=(ip netns exec "$ns")
  if [[ -n $delay ]]; then
    if "${run[@]}" tc qdisc add dev "$dev" root handle 1: netem delay "$delay" 2>/dev/null; then
      "${run[@]}" tc qdisc add dev "$dev" parent 1:1 handle 10: tbf rate "$rate" burst 256kb latency 100ms
      return
    fi
    echo "testbed: this kernel has no netem (sch_netem); --delay $delay is not applied, only --rate $rate" >&2
  fi
  "${run[@]}" tc qdisc add dev "$dev" root tbf rate "$rate" burst 256kb latency 100ms
}

up() {
  local n=$1
  shift
  rate='' delay=''
  while (($#)); do
    case $1 in
      --rate) rate=$2; shift 2 ;;
      --delay) delay=$2; shift 2 ;;
      *) echo "testbed: unknown option $1" >&2; exit 2 ;;
    esac
  done
  [[ $n =~ ^[0-9]+$ ]] && ((n >= 1 && n <= 50)) || { echo "testbed: N must be 1-50; got '$n'" >&2; exit 2; }
  [[ -z $delay || -n $rate ]] || rate=10gbit
  down
  trap 'echo "testbed: up failed or was interrupted; removing what it made" >&2; down; exit 1' ERR INT TERM
  mkdir -p "$state"
  ip link add "${name}br" type bridge
  ip link set "${name}br" up
  for ((i = 1; i <= n; i++)); do
    local ns
    ns=$(netns "$i")
    ip netns add "$ns"
    ip link add "${name}v$i" type veth peer name eth0 netns "$ns"
    ip link set "${name}v$i" master "${name}br" up
    ip netns exec "$ns" ip link set lo up
    ip netns exec "$ns" ip addr add "$(addr "$i")/24" dev eth0
    ip netns exec "$ns" ip link set eth0 up
    # A UTS namespace of its own, kept by a bind mount: the host's own hostname.
    touch "$state/uts-$i"
    unshare --uts="$state/uts-$i" hostname "${name}-host$i"
    if [[ -n $rate ]]; then
      shape "${name}v$i"
      shape eth0 "$ns"
    fi
  done
  echo "$n" >"$state/hosts"
  trap - ERR INT TERM
  echo "testbed $name: $n host(s), $(addr 1)-$(addr "$n")${rate:+, links at $rate}${delay:+ with $delay delay}"
}

exec_on() {
  local i=$1
  shift
  [[ -e $state/uts-$i ]] || { echo "testbed: no host $i in bed $name (scripts/testbed.sh up N first)" >&2; exit 2; }
  exec nsenter --net="/run/netns/$(netns "$i")" --uts="$state/uts-$i" -- "$@"
}

case ${1:-} in
  up) need; shift; up "$@" ;;
  down) need; down ;;
  exec) need; shift; exec_on "$@" ;;
  addr) addr "$2" ;;
  *) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
