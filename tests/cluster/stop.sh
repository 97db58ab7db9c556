#!/usr/bin/env bash
# Stop the test cluster started by tests/cluster/start.sh: cancel its jobs,
# then end each daemon named by a PID file under $SLURM_TEST_DIR (and only
# those: the PID must still belong to the expected binary). Safe to run twice.
set -uo pipefail

SCRATCH="${SLURM_TEST_DIR:-/tmp/curatornet-slurm}"
RUN="$SCRATCH/run"
export PATH="/usr/sbin:$PATH"
[[ -d $RUN ]] || exit 0

# our_pid NAME: print the PID from NAME's PID file if it still runs that binary.
our_pid() {
    local pidfile="$RUN/$1.pid" pid
    [[ -s $pidfile ]] || return 1
    pid="$(cat "$pidfile")"
    [[ -r /proc/$pid/comm && $(cat "/proc/$pid/comm") == "${1:0:15}" ]] || return 1
    echo "$pid"
}

# Cancel leftover jobs first so no job keeps running after its slurmd is gone
# (only with a live controller: scancel would otherwise retry for seconds).
if our_pid slurmctld >/dev/null && command -v scancel >/dev/null; then
    SLURM_CONF="$SCRATCH/etc/slurm.conf" timeout 10 scancel --partition=debug >/dev/null 2>&1 || true
fi

# stop_wave NAME...: TERM each daemon of the wave, wait up to 15 s for all of
# them, then KILL what is left. Waves keep the order (SLURM before munge).
stop_wave() {
    local name pid pids=() names=()
    for name in "$@"; do
        if pid="$(our_pid "$name")"; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid"); names+=("$name")
        fi
        rm -f "$RUN/$name.pid"
    done
    for _ in $(seq 75); do
        local left=0
        for pid in "${pids[@]}"; do [[ -d /proc/$pid ]] && left=1; done
        ((left)) || break
        sleep 0.2
    done
    for i in "${!pids[@]}"; do
        if [[ -d /proc/${pids[$i]} ]]; then
            echo "[slurm-test] ${names[$i]} (${pids[$i]}) ignored TERM; killing" >&2
            kill -KILL "${pids[$i]}" 2>/dev/null || true
        fi
        echo "[slurm-test] stopped ${names[$i]} (${pids[$i]})" >&2
    done
}

stop_wave slurmd slurmctld
stop_wave slurmdbd mariadbd munged

# The link start.sh made so that srun inside jobs finds the configuration.
if [[ $(readlink /etc/slurm/slurm.conf 2>/dev/null) == "$SCRATCH/etc/slurm.conf" ]]; then
    rm -f /etc/slurm/slurm.conf
fi
exit 0
