#!/usr/bin/env bash
# Runs one chaos scenario against the demo system: starts demo-front (which
# starts its demo-workers), waits until it serves, runs `chaos run`, then
# stops the front again, also on Ctrl-C. Exits with chaos's exit code.
#
# usage: demo/run-demo.sh BUILD_DIR SCENARIO [chaos run args...]
#   e.g. demo/run-demo.sh build scenarios/demo-retries-hold.json
#
# Environment: DEMO_PORT (default 8080) and DEMO_WORKER_BASE_PORT (default
# 8081) move the demo; the shipped demo scenarios probe port 8080.
# DEMO_FRONT_ARGS: more demo-front options (e.g. "--breaker-failures 3").
# DEMO_READY_CMD: a shell command run once the front serves, before chaos;
# the demo counts as started only when it succeeds (run-verify.sh waits in it
# for Prometheus's first scrape).
# Own exit codes: 2 usage error, 4 the demo system could not be started.
set -u

prog=run-demo
say() { printf '%s: %s\n' "$prog" "$*" >&2; }

if [ $# -lt 2 ] || [ "$1" = --help ] || [ "$1" = -h ]; then
    echo "usage: $0 BUILD_DIR SCENARIO [chaos run args...]" >&2
    exit 2
fi
build=$1
scenario=$2
shift 2
front_bin=$build/demo/demo-front
chaos_bin=$build/controller/chaos
port=${DEMO_PORT:-8080}
wbase=${DEMO_WORKER_BASE_PORT:-8081}
workers=2

for p in "$port" "$wbase"; do
    case $p in
    '' | *[!0-9]*)
        say "DEMO_PORT and DEMO_WORKER_BASE_PORT must be port numbers, not '$p'"
        exit 2
        ;;
    esac
done
for bin in "$front_bin" "$build/demo/demo-worker" "$chaos_bin"; do
    if [ ! -x "$bin" ]; then
        say "$bin not found or not executable; build first: cmake --build $build"
        exit 2
    fi
done
if [ ! -r "$scenario" ]; then
    say "cannot read scenario '$scenario'"
    exit 2
fi
if [ "$port" != 8080 ]; then
    say "note: the front listens on port $port, but the shipped demo scenarios probe 8080"
fi

# Something already answering on a port we need would make the scenario test
# it instead of the demo: refuse rather than guess.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$port" $(seq "$wbase" $((wbase + workers - 1))); do
    if port_in_use "$p"; then
        say "port $p on 127.0.0.1 is already in use (see: ss -ltnp 'sport = :$p');" \
            "stop what listens there, or set DEMO_PORT / DEMO_WORKER_BASE_PORT"
        exit 4
    fi
done

# A process that has exited but is not yet reaped (our child) is not alive.
alive() {
    local state
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) && [ "$state" != Z ]
}

tmp=$(mktemp -d) || exit 4
front_pid=""
# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
    if [ -n "$front_pid" ] && alive "$front_pid"; then
        say "stopping demo-front (pid $front_pid)"
        kill -TERM "$front_pid" 2>/dev/null
        for _ in $(seq 50); do
            alive "$front_pid" || break
            sleep 0.1
        done
        # Its workers die with it (they hold PR_SET_PDEATHSIG).
        alive "$front_pid" && kill -KILL "$front_pid" 2>/dev/null
        wait "$front_pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# setsid: Ctrl-C reaches chaos (which then reverts its faults) and this
# script, not the demo; the trap above stops the demo afterwards.
launcher=()
command -v setsid >/dev/null && launcher=(setsid)
"${launcher[@]}" "$front_bin" --port "$port" --workers "$workers" --worker-base-port "$wbase" \
    --pidfile "$tmp/front.pid" ${DEMO_FRONT_ARGS:-} &
front_pid=$!

# Ready when /healthz answers and a first /checkout gets through a worker.
ready=""
for _ in $(seq 50); do
    if ! alive "$front_pid"; then
        say "demo-front exited during start-up (see its messages above)"
        exit 4
    fi
    if curl -fsS --noproxy '*' -o /dev/null --max-time 1 "http://127.0.0.1:$port/healthz" \
        2>/dev/null && curl -fsS --noproxy '*' -o /dev/null --max-time 1 \
        "http://127.0.0.1:$port/checkout" 2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.1
done
if [ -z "$ready" ]; then
    say "demo-front did not become ready on 127.0.0.1:$port within 5 s"
    exit 4
fi
# The PID the front wrote itself, in case setsid had to fork.
if [ -s "$tmp/front.pid" ]; then
    front_pid=$(cat "$tmp/front.pid")
fi
if [ -n "${DEMO_READY_CMD:-}" ] && ! bash -c "$DEMO_READY_CMD"; then
    say "DEMO_READY_CMD failed: $DEMO_READY_CMD"
    exit 4
fi
say "demo-front ready on 127.0.0.1:$port (pid $front_pid); running chaos"

# Ctrl-C now belongs to chaos: it reverts its faults and exits with its own
# code, which we pass on. (A trap that runs a command, unlike an ignored
# signal, is not inherited by chaos.)
trap ':' INT
"$chaos_bin" run "$scenario" "$@"
rc=$?
say "chaos exited with $rc"
exit "$rc"
