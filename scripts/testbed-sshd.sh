#!/usr/bin/env bash
# An OpenSSH server on an emulated host of scripts/testbed.sh, for tests of `ringtrain launch
# --hosts`: it accepts only a test client key, for root, on the host's own address. Needs
# root; installs openssh-server (scripts/ensure-debian-packages.sh) when it is missing.
#
#   scripts/testbed-sshd.sh start I DIR   sshd on host I (port 22 of 10.213.0.I), keys in DIR
#   scripts/testbed-sshd.sh stop I DIR    stop it
#
# DIR (made mode 0700 if missing) gets, once: a host key, a client key DIR/client_ed25519
# (give it to `ssh -i`), the authorized_keys that admits it, and one sshd config per host.
# sshd runs in the foreground (-D) under this script's control; `start` returns once it
# listens and writes its pid to DIR/sshd-I.pid. RINGTRAIN_TESTBED names the bed, as for
# testbed.sh; `testbed.sh down` also ends whatever still runs in the bed's hosts.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:-}
host=${2:-}
dir=${3:-}
[[ $cmd == start || $cmd == stop ]] && [[ $host =~ ^[0-9]+$ ]] && [[ -n $dir ]] || { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
pidfile=$dir/sshd-$host.pid

stop() {
  [[ -f $pidfile ]] || return 0
  local pid
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  # sshd ends its listener at once on SIGTERM; wait for it (at most 10 s), then force it.
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

if [[ $cmd == stop ]]; then stop; exit 0; fi

"$here/ensure-debian-packages.sh" openssh-server
sshd=$(command -v sshd || echo /usr/sbin/sshd)
mkdir -p -m 0700 "$dir"
# sshd's privilege separation directory (Debian's service creates it; no service runs here).
mkdir -p -m 0755 /run/sshd
[[ -f $dir/host_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C ringtrain-testbed-host -f "$dir/host_ed25519"
[[ -f $dir/client_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C ringtrain-testbed-client -f "$dir/client_ed25519"
cp "$dir/client_ed25519.pub" "$dir/authorized_keys"
chmod 0600 "$dir/authorized_keys"
address=$("$here/testbed.sh" addr "$host")
# StrictModes no: DIR lies under /tmp, which sshd's ownership check of the key path refuses.
cat >"$dir/sshd-$host.conf" <<EOF
ListenAddress $address:22
HostKey $dir/host_ed25519
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
EOF
stop
log=$dir/sshd-$host.log
: >"$log"
"$here/testbed.sh" exec "$host" "$sshd" -D -e -f "$dir/sshd-$host.conf" >>"$log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$pidfile"
# Ready once it says it listens (at most 30 s); a config it refuses ends it first.
for _ in $(seq 300); do
  grep -q 'Server listening' "$log" && { echo "testbed-sshd: host $host ($address:22) pid $pid"; exit 0; }
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
echo "testbed-sshd: sshd on host $host did not start listening; its log:" >&2
cat "$log" >&2
stop
exit 1
