#!/usr/bin/env bash
# One scenario fault on N chaos-agents (docs/benchmarks.md, "Fleet: one fault
# on N agents"). As root:
#   bench/bench_fleet.sh [-b BUILD] [-r ROUNDS] [--plain] [--ec] [--nice K] [--hold S] [N...]
# (default: build/, 5 rounds, TLS with RSA-2048, N = 10 100 500).
# Starts max(N)+1 chaos-agents on 127.0.0.1 (distinct free ports; TLS with
# one CA-signed certificate for IP:127.0.0.1, --ec for ECDSA P-256, or plain
# HTTP with --plain), each in its own mount namespace where a bind mount
# makes the same pidfile path name that agent's own victim (a `sleep`).
# Then, for each N and round, `chaos run` with an inventory of the first N
# agents runs a scenario of one 2 s pause on "role=bench"; from its JSON
# report: apply = applied_ms - planned_ms (the step's start until all N
# agents answered "active"), revert = ended_ms - (planned_ms + duration_ms
# - 5) (the controller sends its DELETEs 5 ms before the planned end; until
# every agent confirmed). A run that fails is a row too. Then the idle RSS
# and CPU of an agent no inventory names and of agent a0, and GET /v1/faults
# requests per second against a0 (bench_agent_get: libcurl multi, keep-alive,
# 1, 4 and 16 in flight). --nice K runs the controller at niceness K;
# --hold S sleeps S seconds once the agents are up (to profile by hand).
# Everything it starts is stopped on exit; it checks that no victim is left
# stopped and no agent runs.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# Run from the source tree (bench/) it takes build/ or -b; the copy CMake puts
# in BUILD/bench/ takes its own build.
if [[ -x $HERE/../agent/chaos-agent ]]; then BUILD=$(cd "$HERE/.." && pwd); else BUILD=${CHAOS_BUILD:-$HERE/../build}; fi
ROUNDS=5
TLS=1
KEY=rsa
HOLD=0
NICE=0
SIZES=()
while (($#)); do
    case $1 in
    -b) BUILD=$(cd "$2" && pwd); shift 2 ;;
    -r) ROUNDS=$2; shift 2 ;;
    --plain) TLS=0; shift ;;
    --ec) KEY=ec; shift ;;
    --nice) NICE=$2; shift 2 ;; # the controller's niceness (default 0)
    --hold) HOLD=$2; shift 2 ;; # after the start, sleep this long (profile by hand)
    -h | --help) sed -n 2,21p "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    [0-9]*) SIZES+=("$1"); shift ;;
    *) echo "bench_fleet: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
((${#SIZES[@]})) || SIZES=(10 100 500)
AGENT=$BUILD/agent/chaos-agent
CHAOS=$BUILD/controller/chaos
GETTER=$BUILD/bench/bench_agent_get
for f in "$AGENT" "$CHAOS" "$GETTER"; do
    [[ -x $f ]] || { echo "bench_fleet: $f is missing: cmake --build $BUILD" >&2; exit 2; }
done
[[ $(id -u) == 0 ]] || { echo "bench_fleet: needs root (mount namespaces, pausing processes)" >&2; exit 77; }
MAXN=0
for n in "${SIZES[@]}"; do ((n > MAXN)) && MAXN=$n; done
# The controller holds a connection per agent, the agents a few fds each.
ulimit -n "$(ulimit -Hn)"
(($(ulimit -n) > 4 * MAXN + 64)) || { echo "bench_fleet: ulimit -n $(ulimit -n) is too low for $MAXN agents" >&2; exit 2; }

T=$(mktemp -d /tmp/chaos-bench-fleet-XXXXXX)
export CHAOS_STATE_DIR=$T/state
APIDS=()
VPIDS=()
cleanup() {
    set +e
    exec 3>&2 2>/dev/null # not bash's "Killed" of each victim
    local p
    for p in "${APIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done # each reverts what it holds
    for p in "${APIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
    done
    for p in "${VPIDS[@]}"; do kill -CONT "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
    local left=0
    for p in "${APIDS[@]}" "${VPIDS[@]}"; do [[ -e /proc/$p ]] && left=$((left + 1)); done
    ((left == 0)) || echo "bench_fleet: $left processes still there after cleanup" >&3
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

msg() { echo "# $*" >&2; }
json_get() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

head -c 32 /dev/urandom | base64 | tr -d '/+=' >"$T/token"
chmod 600 "$T/token"
SCHEME=http
CA=""
if ((TLS)); then
    SCHEME=https
    CA=$T/ca.pem
    if [[ $KEY == ec ]]; then newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1); else newkey=(-newkey rsa:2048); fi
    openssl req -x509 "${newkey[@]}" -nodes -keyout "$T/ca.key" -out "$T/ca.pem" -days 2 \
        -subj "/CN=chaos bench CA" >/dev/null 2>&1
    openssl req "${newkey[@]}" -nodes -keyout "$T/agent.key" -out "$T/agent.csr" -subj "/CN=127.0.0.1" >/dev/null 2>&1
    printf 'subjectAltName=IP:127.0.0.1\n' >"$T/san.ext"
    openssl x509 -req -in "$T/agent.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial \
        -out "$T/agent.pem" -days 2 -extfile "$T/san.ext" >/dev/null 2>&1
    chmod 600 "$T/agent.key"
fi

# ---- the agents and their victims ----
# Ports: all bound at once, so they are distinct, then released.
mapfile -t PORTS < <(python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
for s in ss: print(s.getsockname()[1])' "$((MAXN + 1))")
mkdir -p "$T/vp" # the pidfile's folder as every agent sees it: its own folder bound over it
t0=$(date +%s%N)
for ((i = 0; i <= MAXN; i++)); do # a$MAXN: in no inventory, the idle reference
    d=$T/a$i
    mkdir -p "$d"
    sleep 3600 </dev/null >/dev/null 2>&1 &
    VPIDS+=("$!")
    echo "$!" >"$d/victim.pid"
    tls=""
    ((TLS)) && tls=", \"tls\": {\"cert\": \"$T/agent.pem\", \"key\": \"$T/agent.key\"}"
    echo "{\"listen\": \"127.0.0.1:${PORTS[i]}\", \"token_file\": \"$T/token\", \"journal\": \"$d/state/journal.jsonl\", \"lease\": \"5s\"$tls}" >"$d/agent.json"
    unshare -m --propagation private sh -c 'mount --bind "$1" "$2" && exec "$3" --config "$4"' sh \
        "$d" "$T/vp" "$AGENT" "$d/agent.json" </dev/null >/dev/null 2>"$d/agent.log" &
    APIDS+=("$!")
done
# Every agent answers /healthz (a TLS handshake each).
python3 - "$SCHEME" "$CA" "${PORTS[@]}" <<'PY'
import socket, ssl, sys, time
scheme, ca, ports = sys.argv[1], sys.argv[2], sys.argv[3:]
ctx = ssl.create_default_context(cafile=ca) if scheme == "https" else None
left, deadline = set(ports), time.time() + 120
while left and time.time() < deadline:
    for p in sorted(left):
        try:
            s = socket.create_connection(("127.0.0.1", int(p)), timeout=2)
            if ctx: s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            if s.recv(64).startswith(b"HTTP/1.1 200"): left.discard(p)
            s.close()
        except OSError:
            pass
    if left: time.sleep(0.2)
if left:
    sys.exit("bench_fleet: %d agents did not answer /healthz, e.g. port %s" % (len(left), min(left)))
PY
msg "$((MAXN + 1)) agents up in $((($(date +%s%N) - t0) / 1000000)) ms ($SCHEME$( ((TLS)) && echo ", $KEY key")), each with its own victim"

stopped_victims() { # how many of the first N victims are stopped (State T)
    local files=() p
    for p in "${VPIDS[@]:0:$1}"; do files+=("/proc/$p/status"); done
    awk '/^State:/ && $2 == "T" {n++} END {print n + 0}' "${files[@]}"
}

# ---- one fault on N agents ----
cat >"$T/scenario.json" <<JSON
{"version": 1, "name": "bench-fleet", "faults": [
  {"name": "pause the victims", "kind": "process", "agent": "role=bench", "duration": "2s",
   "target": {"pidfile": "$T/vp/victim.pid"}, "params": {"action": "pause"}}]}
JSON
inventory() { # N FILE
    local i sep="" tls=""
    ((TLS)) && tls=", \"tls\": {\"ca_file\": \"$T/ca.pem\"}"
    {
        echo '{"agents": ['
        for ((i = 0; i < $1; i++)); do
            echo "$sep{\"name\": \"a$i\", \"url\": \"$SCHEME://127.0.0.1:${PORTS[i]}\", \"bearer_token_file\": \"$T/token\", \"timeout\": \"10s\", \"labels\": {\"role\": \"bench\"}$tls}"
            sep=,
        done
        echo ']}'
    } >"$2"
}
if ((HOLD)); then
    for n in "${SIZES[@]}"; do inventory "$n" "$T/inv$n.json"; done
    declare -p T PORTS APIDS VPIDS SCHEME CA >"$T/env.sh"
    msg "holding ${HOLD}s: $CHAOS run $T/scenario.json --inventory $T/inv${MAXN}.json (source $T/env.sh)"
    sleep "$HOLD"
fi
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1))"
echo "N | round | apply ms | revert ms | paused seen | run wall ms"
for n in "${SIZES[@]}"; do
    inventory "$n" "$T/inv$n.json"
    for ((r = 1; r <= ROUNDS; r++)); do
        rep=$T/report-$n-$r.json
        w0=$(date +%s%N)
        nice -n "$NICE" "$CHAOS" run "$T/scenario.json" --inventory "$T/inv$n.json" --no-progress \
            --report-json "$rep" >"$T/run-$n-$r.out" 2>&1 &
        run=$!
        # Sample the victims every 0.1 s while it runs: each of the N must be
        # seen stopped (State T) at least once.
        : >"$T/seen"
        files=()
        for p in "${VPIDS[@]:0:n}"; do files+=("/proc/$p/status"); done
        while kill -0 "$run" 2>/dev/null; do
            awk '/^State:/ && $2 == "T" {print FILENAME}' "${files[@]}" >>"$T/seen" 2>/dev/null || true
            sleep 0.1
        done
        seen=$(sort -u "$T/seen" | wc -l)
        rc=0
        wait "$run" || rc=$?
        wall=$((($(date +%s%N) - w0) / 1000000))
        if ((rc != 0)); then # recorded, not fatal: a timeout at scale is a result too
            why=$(grep -m1 -o "ABORTED: .*" "$T/run-$n-$r.out" | cut -c1-200)
            echo "$n | $r | failed (exit $rc): $why | - | $seen | $wall"
            echo "$n $r -1 -1 $wall" >>"$T/rows"
        else
            # A pause applied just before the planned end lasts only until its
            # revert there, and a 0.1 s sampler on a busy machine can miss it.
            ((seen == n)) || echo "bench_fleet: note: $seen of $n victims seen stopped (N=$n, round $r)" >&2
            read -r apply revert < <(json_get "$rep" '" ".join(str(x) for x in (lambda f: (f["applied_ms"] - f["planned_ms"], f["ended_ms"] - (f["planned_ms"] + f["duration_ms"] - 5)))(r["faults"][0]))')
            echo "$n | $r | $apply | $revert | $seen | $wall"
            echo "$n $r $apply $revert $wall" >>"$T/rows"
        fi
        sleep 1 # the agents' lease timers and reverts settle
        left=$(stopped_victims "${#VPIDS[@]}")
        ((left == 0)) || { echo "bench_fleet: $left victims still stopped after the run" >&2; exit 1; }
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$T/rows" <<'PY'
import statistics, sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1])]
print("\nN | apply median (min-max) ms | revert median (min-max) ms | run wall median ms")
for n in sorted({r[0] for r in rows}):
    a = [r[2] for r in rows if r[0] == n and r[2] >= 0]; v = [r[3] for r in rows if r[0] == n and r[3] >= 0]
    w = [r[4] for r in rows if r[0] == n]; bad = sum(1 for r in rows if r[0] == n and r[2] < 0)
    if not a:
        print("%d | every round failed | - | %g" % (n, statistics.median(w))); continue
    print("%d | %g (%d-%d) | %g (%d-%d) | %g%s" % (n, statistics.median(a), min(a), max(a),
          statistics.median(v), min(v), max(v), statistics.median(w), ", %d rounds failed" % bad if bad else ""))
PY

# ---- one agent: idle RSS and CPU, then GET /v1/faults ----
A0=${APIDS[0]}
status_kib() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$2/$3"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ctxsw() { awk '/^(non)?voluntary_ctxt_switches/ {s += $2} END {print s}' "/proc/$1/status"; }
A_IDLE=${APIDS[MAXN]}
mem() { # PID: its memory in one line
    echo "VmRSS $(status_kib VmRSS "$1" status) KiB, VmHWM $(status_kib VmHWM "$1" status) KiB, Pss $(status_kib Pss "$1" smaps_rollup) KiB, Private $(($(status_kib Private_Clean "$1" smaps_rollup) + $(status_kib Private_Dirty "$1" smaps_rollup))) KiB"
}
IDLE_S=10
HZ=$(getconf CLK_TCK)
c0=$(cpu_ticks "$A0"); s0=$(ctxsw "$A0"); i0=$(cpu_ticks "$A_IDLE"); j0=$(ctxsw "$A_IDLE")
sleep "$IDLE_S"
c1=$(cpu_ticks "$A0"); s1=$(ctxsw "$A0"); i1=$(cpu_ticks "$A_IDLE"); j1=$(ctxsw "$A_IDLE")
echo
echo "agent a$MAXN (in no inventory, served only /healthz): $(mem "$A_IDLE")"
echo "agent a$MAXN idle ${IDLE_S} s: $((i1 - i0)) CPU ticks (1/$HZ s), $((j1 - j0)) context switches"
echo "agent a0 (after every round): $(mem "$A0")"
echo "agent a0 idle ${IDLE_S} s: $((c1 - c0)) CPU ticks (1/$HZ s), $((s1 - s0)) context switches"
# a0 lists the faults of its rounds (one per round and N); three more live ones.
AUTH="Authorization: Bearer $(cat "$T/token")"
CURL=(curl -sf -H "$AUTH")
((TLS)) && CURL+=(--cacert "$T/ca.pem")
for k in 1 2 3; do
    sleep 3600 </dev/null >/dev/null 2>&1 &
    VPIDS+=("$!")
    "${CURL[@]}" -X POST "$SCHEME://127.0.0.1:${PORTS[0]}/v1/faults" -o /dev/null \
        -d "{\"name\": \"get bench $k\", \"kind\": \"process\", \"target\": {\"pid\": $!}, \"params\": {\"action\": \"pause\"}, \"duration\": \"60s\"}"
done
nf=$("${CURL[@]}" "$SCHEME://127.0.0.1:${PORTS[0]}/v1/faults" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["faults"]))')
bytes=$("${CURL[@]}" "$SCHEME://127.0.0.1:${PORTS[0]}/v1/faults" | wc -c)
echo "GET /v1/faults on a0: $nf faults listed, $bytes bytes a reply"
for conc in 1 4 16; do
    "$GETTER" "$SCHEME://127.0.0.1:${PORTS[0]}/v1/faults" "$T/token" "$CA" 5 "$conc"
done
echo "agent a0 after the GET load: $(mem "$A0")"
