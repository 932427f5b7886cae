#!/usr/bin/env bash
# Integration test of the demo system (demo-front and its demo-workers), with
# real processes on free high ports of 127.0.0.1; chaos itself is not needed.
# It checks that: the front serves /checkout; a SIGKILLed worker is covered by
# retries and restarted within 2 s; with every worker stopped /checkout fails
# fast with 503; SIGTERM stops the front and all its workers; and the workers
# die with a SIGKILLed front (PR_SET_PDEATHSIG).
# Run by ctest with CHAOS_BUILD (build folder) and CHAOS_SOURCE in the environment.
set -u

say() { echo "demo_system: $*"; }
: "${CHAOS_BUILD:?CHAOS_BUILD must name the build folder}"
front_bin=$CHAOS_BUILD/demo/demo-front
for bin in "$front_bin" "$CHAOS_BUILD/demo/demo-worker"; do
    [ -x "$bin" ] || { say "FAIL: $bin is missing; build the demo first"; exit 1; }
done

tmp=$(mktemp -d) || exit 1
log=$tmp/front.log
front_pid=""
worker_pids=()

fail() {
    say "FAIL: $*" >&2
    if [ -s "$log" ]; then
        echo "--- demo-front's messages:" >&2
        cat "$log" >&2
    fi
    exit 1
}

ms() { date +%s%3N; }

# Exited but unreaped (a zombie) counts as dead.
alive() {
    local state
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) && [ "$state" != Z ]
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# get URL [MAX_TIME]: sets code (000 when no answer) and body.
get() {
    code=$(curl -sS --noproxy '*' --max-time "${2:-3}" -o "$tmp/body" -w '%{http_code}' "$1" \
        2>"$tmp/curl.err") || true
    body=$(cat "$tmp/body" 2>/dev/null)
    rm -f "$tmp/body"
}

# The PID of this test's worker on port $1 (a child of our front), or nothing.
# Never by name alone: other tests may run demo-workers of their own.
worker_on() {
    local p
    for p in $(pgrep -P "$front_pid" -x demo-worker); do
        if [ "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" = "demo-worker --port $1 " ]; then
            echo "$p"
            return
        fi
    done
}

# Every live demo-worker process on our worker ports, whoever its parent.
our_port_workers() {
    local p
    for p in $(pgrep -x demo-worker); do
        case "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" in
        "demo-worker --port $wb " | "demo-worker --port $((wb + 1)) ")
            alive "$p" && echo "$p"
            ;;
        esac
    done
}

stop_front() {
    [ -n "$front_pid" ] || return 0
    if alive "$front_pid"; then
        pkill -CONT -P "$front_pid" 2>/dev/null
        kill -TERM "$front_pid" 2>/dev/null
        for _ in $(seq 50); do
            alive "$front_pid" || break
            sleep 0.1
        done
        alive "$front_pid" && kill -KILL "$front_pid" 2>/dev/null
    fi
    wait "$front_pid" 2>/dev/null
    front_pid=""
}

# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
    stop_front
    local p
    for p in "${worker_pids[@]}"; do
        # Only if that PID is still one of our workers (PIDs get reused).
        case "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" in
        "demo-worker --port "*) kill -KILL "$p" 2>/dev/null ;;
        esac
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Ports: the front on fp, workers on wb and wb+1; random so that parallel
# runs do not collide, and checked to be free.
fp=""
for _ in $(seq 30); do
    cand=$((18080 + (RANDOM % 3000) * 4)) # below the ephemeral range
    if ! port_in_use "$cand" && ! port_in_use $((cand + 1)) && ! port_in_use $((cand + 2)); then
        fp=$cand
        break
    fi
done
[ -n "$fp" ] || fail "found no three free ports"
wb=$((fp + 1))
front_url=http://127.0.0.1:$fp

start_front() {
    "$front_bin" --port "$fp" --workers 2 --worker-base-port "$wb" --retries 2 \
        --attempt-timeout 300ms --pidfile "$tmp/front.pid" 2>>"$log" &
    front_pid=$!
    local _
    for _ in $(seq 100); do
        alive "$front_pid" || fail "demo-front exited during start-up"
        get "$front_url/checkout" 1
        [ "$code" = 200 ] && break
        sleep 0.1
    done
    [ "$code" = 200 ] || fail "/checkout not 200 within 10 s of the start (last: $code $body)"
    mapfile -t worker_pids < <(pgrep -P "$front_pid" -x demo-worker)
    [ ${#worker_pids[@]} = 2 ] || fail "expected 2 demo-worker children, found: ${worker_pids[*]}"
}

say "ports: front $fp, workers $wb and $((wb + 1))"

# -- usage errors
"$front_bin" --workers 0 2>"$tmp/usage.err" >/dev/null
rc=$?
[ $rc = 2 ] || fail "--workers 0: exit $rc, expected 2"
grep -q -- --workers "$tmp/usage.err" || fail "--workers 0: message does not name the flag"

# -- it serves
start_front
get "$front_url/healthz"
[[ "$code" = 200 && "$body" = ok ]] || fail "/healthz: $code '$body'"
get "$front_url/checkout"
[[ "$code" = 200 && "$body" =~ ^"ok via worker "($wb|$((wb + 1)))" (attempt 1)"$ ]] ||
    fail "/checkout: $code '$body'"
for p in "${worker_pids[@]}"; do
    [ "$(cat "/proc/$p/comm")" = demo-worker ] || fail "worker $p: comm is not demo-worker"
done
say "ok: serving through workers ${worker_pids[*]}"

# -- a killed worker: retries cover it, and it comes back within 2 s
victim=$(worker_on "$wb")
[ -n "$victim" ] || fail "no worker on port $wb"
kill -KILL "$victim"
t0=$(ms)
retried=0
for i in $(seq 10); do
    get "$front_url/checkout"
    [ "$code" = 200 ] || fail "/checkout #$i after killing worker $wb: $code '$body'"
    [[ "$body" = *"(attempt 1)" ]] || retried=$((retried + 1))
done
new=""
while [ $(($(ms) - t0)) -lt 2000 ]; do
    new=$(worker_on "$wb")
    if [ -n "$new" ] && [ "$new" != "$victim" ]; then
        get "http://127.0.0.1:$wb/work" 1
        [ "$code" = 200 ] && break
    fi
    sleep 0.05
done
[[ -n "$new" && "$new" != "$victim" && "$code" = 200 ]] ||
    fail "worker $wb not restarted and serving within 2 s (pid now: '${new:-none}')"
[ "$body" = "worker $wb ok" ] || fail "restarted worker's /work: '$body'"
mapfile -t worker_pids < <(pgrep -P "$front_pid" -x demo-worker)
say "ok: 10 checkouts after the kill all 200 ($retried needed a retry);" \
    "worker restarted as $new after $(($(ms) - t0)) ms"

# -- every worker stopped: no retry helps, the front answers 503 quickly
kill -STOP "${worker_pids[@]}"
t0=$(ms)
get "$front_url/checkout" 5
elapsed=$(($(ms) - t0))
kill -CONT "${worker_pids[@]}"
[[ "$code" = 503 && "$body" = "all workers failed: "* ]] ||
    fail "/checkout with all workers stopped: $code '$body'"
# 3 attempts of 300 ms; the rest is slack for slow (sanitizer) builds.
[ "$elapsed" -lt 2500 ] || fail "the 503 took $elapsed ms, expected about 900"
say "ok: all workers stopped -> 503 in $elapsed ms ($body)"
for _ in $(seq 30); do
    get "$front_url/checkout" 1
    [ "$code" = 200 ] && break
    sleep 0.1
done
[ "$code" = 200 ] || fail "/checkout not 200 again after SIGCONT: $code '$body'"

# -- SIGTERM: the front exits 0 and takes its workers with it
kill -TERM "$front_pid"
for _ in $(seq 50); do
    alive "$front_pid" || break
    sleep 0.1
done
alive "$front_pid" && fail "demo-front still running 5 s after SIGTERM"
wait "$front_pid"
rc=$?
front_pid=""
[ $rc = 0 ] || fail "demo-front exited with $rc after SIGTERM, expected 0"
[ -e "$tmp/front.pid" ] && fail "demo-front left its pidfile behind"
left=$(our_port_workers)
[ -z "$left" ] || fail "demo-workers left after the front's SIGTERM: $left"
say "ok: SIGTERM -> exit 0, no worker left"

# -- SIGKILL: the workers die with the front
start_front
{
    kill -KILL "$front_pid"
    wait "$front_pid"
} 2>/dev/null # not bash's "Killed" notice
front_pid=""
t0=$(ms)
while [ $(($(ms) - t0)) -lt 2000 ]; do
    left=$(our_port_workers)
    [ -z "$left" ] && break
    sleep 0.05
done
[ -z "$left" ] || fail "demo-workers outlived a SIGKILLed front: $left"
say "ok: SIGKILL of the front -> its workers died too"
say "PASS"
