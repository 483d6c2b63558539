#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for tests and rehearsals: Debian's slurmctld, slurmd
# and munged (installed by scripts/ensure-debian-packages.sh when missing) on one emulated host
# of scripts/testbed.sh (a network namespace with its own hostname, NAME-host1 at 10.213.0.1),
# so that their ports clash with nothing on the machine. Needs root (CI runs as root).
#
#   scripts/slurm-local.sh up          start the cluster; returns once its node is idle
#   scripts/slurm-local.sh exec CMD... run CMD on the node (srun, sbatch, sinfo, or anything
#                                      that must reach the cluster), with SLURM_CONF set
#   scripts/slurm-local.sh host        print the node's hostname (the allocation's node list)
#   scripts/slurm-local.sh down        stop the daemons and remove everything `up` made
#
# RINGTRAIN_TESTBED=NAME names the cluster and its test bed (default slm): several can run at
# once. RINGTRAIN_SLURM_DEADLINE_S (default 60) bounds how long `up` waits for the node.
#
# What it touches outside its own test bed: nothing on disk but /run/ringtrain-slurm/NAME
# (mode 0700: slurm.conf, the munge key and socket, state, spool, logs and pid files). The node
# runs in a private mount namespace in which /etc/hosts is replaced by a file naming the node,
# so that processes started by Slurm resolve the node list's hostname; the machine's
# /etc/hosts is never written. `up` removes a previous cluster of the same name first and
# undoes what it made if it fails or is interrupted.
set -Eeuo pipefail

name=${RINGTRAIN_TESTBED:-slm}
export RINGTRAIN_TESTBED=$name
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
testbed=$here/testbed.sh
dir=/run/ringtrain-slurm/$name
deadline_s=${RINGTRAIN_SLURM_DEADLINE_S:-60}
host=$name-host1

need() {
  [[ $(id -u) == 0 ]] || { echo "slurm-local: needs root (network and mount namespaces, Slurm's daemons); run it as root, as CI does" >&2; exit 2; }
}

# Runs on the node: the bed's host 1 (network and hostname) in the cluster's mount namespace.
on_node() {
  [[ -e $dir/mnt ]] || { echo "slurm-local: no cluster named $name (scripts/slurm-local.sh up first)" >&2; exit 2; }
  "$testbed" exec 1 nsenter --mount="$dir/mnt" -- env --chdir="$PWD" SLURM_CONF="$dir/slurm.conf" "$@"
}

stop_daemons() { # stop_daemons PIDFILE...: SIGTERM to each, then SIGKILL to those left after 10 s
  local file pid pids=() until=$((SECONDS + 10))
  for file in "$@"; do
    pid=$(cat "$file" 2>/dev/null) || continue
    [[ $pid =~ ^[0-9]+$ ]] && kill "$pid" 2>/dev/null && pids+=("$pid")
  done
  while ((${#pids[@]})) && ((SECONDS < until)) && kill -0 "${pids[@]}" 2>/dev/null; do sleep 0.1; done
  ((${#pids[@]} == 0)) || kill -9 "${pids[@]}" 2>/dev/null || true
}

down() {
  if [[ -d $dir ]]; then
    stop_daemons "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"
  fi
  # Whatever still runs on the node (job steps, a killed test's workers) goes with its host.
  "$testbed" down
  umount "$dir/mnt" 2>/dev/null || true
  umount "$dir" 2>/dev/null || true
  rm -rf "$dir"
}

write_conf() {
  local address hardware
  address=$("$testbed" addr 1)
  # The node as slurmd measures it (CPUs, sockets, cores, threads); memory is not scheduled.
  hardware=$(slurmd -C | head -n1 | tr ' ' '\n' | grep -E '^(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=' | tr '\n' ' ')
  : >"$dir/plugstack.conf"
  # The node's own network namespace holds nothing else: Slurm's usual ports are free there.
  cat >"$dir/slurm.conf" <<EOF
ClusterName=ringtrain$name
SlurmctldHost=$host($address)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket.2
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
PlugStackConfig=$dir/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MailProg=/bin/true
NodeName=$host NodeAddr=$address ${hardware}State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

wait_for() { # wait_for WHAT COMMAND...: polls COMMAND until it succeeds or the deadline passes
  local what=$1
  shift
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= until)); then
      echo "slurm-local: $what did not happen within ${deadline_s} s; logs in $dir:" >&2
      tail -n 20 "$dir"/*.log "$dir"/munge/*.log >&2 2>/dev/null || true
      return 1
    fi
    sleep 0.1
  done
}

node_idle() { [[ $(on_node sinfo -h -N -n "$host" -o %T 2>/dev/null) == idle ]]; }

up() {
  need
  "$here/ensure-debian-packages.sh" slurmctld slurmd slurm-client munge
  down
  trap 'echo "slurm-local: up failed or was interrupted; removing what it made" >&2; down; exit 1' ERR INT TERM
  until=$((SECONDS + deadline_s))
  "$testbed" up 1 >/dev/null
  mkdir -p /run/ringtrain-slurm "$dir"
  chmod 0700 "$dir"
  # A namespace can be kept in a file only on a mount that does not propagate: the folder is one.
  mount --bind "$dir" "$dir"
  mount --make-private "$dir"
  mkdir -m 0700 "$dir/munge" "$dir/state" "$dir/spool"
  printf '127.0.0.1 localhost\n%s %s\n' "$("$testbed" addr 1)" "$host" >"$dir/hosts"
  touch "$dir/mnt"
  unshare --mount="$dir/mnt" --propagation private -- mount --bind "$dir/hosts" /etc/hosts
  mungekey --create --keyfile="$dir/munge/munge.key" 2>/dev/null || dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 0600 "$dir/munge/munge.key"
  write_conf
  on_node munged --force --socket="$dir/munge/munge.socket.2" --key-file="$dir/munge/munge.key" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed"
  wait_for "munged answering" on_node sh -c "munge -n -S '$dir/munge/munge.socket.2' | unmunge -S '$dir/munge/munge.socket.2'"
  on_node slurmctld -c -f "$dir/slurm.conf"
  wait_for "slurmctld answering" on_node scontrol ping
  on_node slurmd -f "$dir/slurm.conf"
  wait_for "node $host idle" node_idle
  trap - ERR INT TERM
  echo "slurm-local $name: node $host ($("$testbed" addr 1)) idle, partition main; run commands on it with RINGTRAIN_TESTBED=$name scripts/slurm-local.sh exec CMD"
}

case ${1:-} in
  up) up ;;
  down) need; down ;;
  exec) need; shift; on_node "$@" ;;
  host) echo "$host" ;;
  *) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
