# Sourced by the integration tests (not a test itself: it does not end in .sh).
# Every test works in its own temp folder and state dir, starts only processes
# it owns, and removes all of it on exit, also when it fails.
set -euo pipefail
: "${CHAOS_BUILD:?run through ctest (CHAOS_BUILD unset)}" "${CHAOS_SOURCE:?}"
CHAOS="$CHAOS_BUILD/controller/chaos"
T=$(mktemp -d /tmp/chaos-t-XXXXXX)
export CHAOS_STATE_DIR="$T/state"
OWNED_PIDS=()

cleanup() {
    local p
    for p in "${OWNED_PIDS[@]}"; do
        kill -CONT "$p" 2>/dev/null || true
        kill -KILL "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
ok() { echo "ok: $*"; }

# start_victim NAME: a sleeping process whose comm is NAME (<= 15 chars); sets
# VPID. Returns once the fork has exec'd, so the name is there to be matched.
# A second victim of the same name reuses the copy: copying over it while an
# earlier victim is still being killed fails with "Text file busy".
start_victim() {
    [[ -e $T/$1 ]] || cp /bin/sleep "$T/$1"
    "$T/$1" 600 >/dev/null 2>&1 &
    VPID=$!
    OWNED_PIDS+=("$VPID")
    wait_until 5 has_name "$VPID" "$1"
}

has_name() { [[ $(cat "/proc/$1/comm" 2>/dev/null) == "$2" ]]; }

# proc_state PID: one letter, R/S/T/Z...
proc_state() { sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status"; }

# wait_until SECONDS CMD...: polls CMD every 50 ms; fails the test on timeout.
wait_until() {
    local limit=$1 i
    shift
    for ((i = 0; i < limit * 20; i++)); do
        "$@" && return 0
        sleep 0.05
    done
    fail "timed out after ${limit}s waiting for: $*"
}

is_stopped() { [[ $(proc_state "$1") == T ]]; }
is_running() { [[ $(proc_state "$1") =~ ^[RS]$ ]]; }

# json_get FILE PYEXPR: evaluates a Python expression over the parsed file as r.
json_get() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# pause_scenario FILE PID DURATION [EXTRA_TOP_LEVEL_JSON]: a scenario pausing PID.
pause_scenario() {
    local extra=${4:-}
    cat >"$1" <<JSON
{
  "version": 1,
  "name": "pause-victim",
  "faults": [
    {"name": "pause victim", "kind": "process", "duration": "$3",
     "target": {"pid": $2}, "params": {"action": "pause"}}
  ]${extra:+,$extra}
}
JSON
}

# free_ports N: the first of N consecutive TCP ports on 127.0.0.1 that are
# free now (the tests start servers there), from a random start.
free_ports() {
    python3 - "$1" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
for _ in range(200):
    base = random.randrange(20000, 60000 - n)
    socks = []
    try:
        for p in range(base, base + n):
            s = socket.socket()
            s.bind(("127.0.0.1", p))
            socks.append(s)
        print(base)
        break
    except OSError:
        pass
    finally:
        for s in socks:
            s.close()
else:
    sys.exit("no free ports")
PY
}
