#!/usr/bin/env bash
# Syscall faults on a RUNNING process (target.pid / name), through ptrace for
# the window only: a shell loop whose writes under one folder fail with EIO
# for 2s and work before and after (its forked subshells too); a python3
# process whose threads (old and new) all see the fault; `chaos run`
# SIGKILLed mid-window, after which the target is untraced and works; and
# the agent's policy refusing what it refuses for the process kind. After
# each: TracerPid 0 and Seccomp 0 in every thread's /proc status.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/agent_lib.bash"
PY=/usr/bin/python3
[[ -x $PY ]] || fail "python3 is not installed (dev.sh installs it)"

# untraced PID: no thread of PID has a tracer or a seccomp filter.
untraced() {
    local s
    for s in /proc/"$1"/task/*/status; do
        grep -q '^TracerPid:[[:space:]]*0$' "$s" || return 1
        grep -q '^Seccomp:[[:space:]]*0$' "$s" || return 1
    done
}
stopped() { grep -qE '^State:[[:space:]]+[tT]' "/proc/$1/status"; }
count() { grep -c "^$1" "$2" 2>/dev/null || true; }
# at_least PATTERN FILE N: FILE has N lines starting with PATTERN (polled by wait_until).
at_least() { (($(count "$1" "$2") >= $3)); }
# attach_scenario FILE NAME TARGET DURATION PREFIX
attach_scenario() {
    cat >"$1" <<JSON
{"version": 1, "name": "$2",
 "faults": [{"name": "$2", "kind": "syscall", "duration": "$4",
   "target": $3,
   "params": {"syscalls": ["write"], "errno": "EIO", "path_prefix": "$5"}}]}
JSON
}

# 1. A shell loop: every 0.1s a write under $T/data (and one from a forked
#    subshell), each logged as ok or fail in $T/sh.log (outside the prefix).
# The loop runs as a copy of sh named LOOP, so that it is targeted by name
# (its forked subshells, short-lived, have that name too).
mkdir -p "$T/data"
LOOP=sal-$$
cp "$(readlink -f /bin/sh)" "$T/$LOOP"
"$T/$LOOP" -c 'trap "echo usr1 >> \"\$1/sh.log\"" USR1
while :; do
    if echo x >> "$1/data/out" 2>/dev/null; then echo ok >> "$1/sh.log"; else echo fail >> "$1/sh.log"; fi
    (echo c >> "$1/data/child") 2>/dev/null || echo childfail >> "$1/sh.log"
    sleep 0.1
done' loop "$T" &
SPID=$!
OWNED_PIDS+=("$SPID")
wait_until 5 at_least ok "$T/sh.log" 3
[[ $(count fail "$T/sh.log") == 0 ]] || fail "the loop fails before any fault: the test proves nothing"
attach_scenario "$T/sh.json" "loop eio" "{\"name\": \"$LOOP\"}" 2s "$T/data"
"$CHAOS" run "$T/sh.json" --report-json "$T/sh.report.json" >"$T/sh.out" 2>&1 || fail "chaos run exited $?: $(cat "$T/sh.out")"
cat "$T/sh.out"
TRACER=$(sed -n 's/.*by tracer \([0-9]*\).*/\1/p' "$T/sh.out" | head -1)
[[ -n $TRACER && ! -e /proc/$TRACER ]] || fail "the tracer '$TRACER' outlived the window"
INJECTED=$(json_get "$T/sh.report.json" '[e["detail"] for e in r["faults"][0]["events"] if e["event"] == "reverted"][0]' |
    sed -n 's/.*detached, \([0-9]*\) calls\{0,1\} injected.*/\1/p')
[[ -n $INJECTED ]] || fail "the report does not say how many calls were injected"
# Every injected call is one failed write the loop logged (the log is outside the prefix).
all_logged() { (($(count fail "$T/sh.log") + $(count childfail "$T/sh.log") == INJECTED)); }
wait_until 2 all_logged
grep -q "traced [0-9]* process.*$SPID ($LOOP)" "$T/sh.out" || fail "chaos run did not say what it traced"
FAILS=$(count fail "$T/sh.log")
CHILDFAILS=$(count childfail "$T/sh.log")
# At 10 writes a second, a 2s window fails about 20; the loop is slowed a
# little by the tracing, so ask for a good part of it.
((FAILS >= 8)) || fail "only $FAILS writes failed in the 2s window"
((CHILDFAILS >= 8)) || fail "only $CHILDFAILS writes of forked subshells failed"
untraced "$SPID" || fail "the loop is still traced: $(grep -E 'TracerPid|Seccomp' /proc/$SPID/status)"
OKS=$(count ok "$T/sh.log")
wait_until 5 at_least ok "$T/sh.log" $((OKS + 5))
[[ $(count fail "$T/sh.log") == "$FAILS" ]] || fail "writes still fail after the window"
[[ $(count childfail "$T/sh.log") == "$CHILDFAILS" ]] || fail "subshell writes still fail after the window"
grep -q "^ok" <(sed -n '1,3p' "$T/sh.log") || fail "no ok before the window"
kill -0 "$SPID" || fail "the loop died"
ok "running shell loop: $FAILS writes (and $CHILDFAILS of forked subshells) failed with EIO in the window only, as many as the tracer injected ($INJECTED); untraced, no tracer left, still writing"

# 2. A multithreaded python3: 4 threads write under $T/pydata every 50ms,
#    and a new thread is started every 300ms; each logs its EIOs.
mkdir -p "$T/pydata"
cat >"$T/threads.py" <<'PY'
import errno, os, sys, threading, time
base, log = sys.argv[1], sys.argv[2]
lock = threading.Lock()
def note(s):
    with lock, open(log, "a") as f:
        f.write(s + "\n")
def worker(name, forever):
    fd = os.open(os.path.join(base, name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    while True:
        try:
            os.write(fd, b"x\n")
            note("ok " + name)
        except OSError as e:
            note(("eio " if e.errno == errno.EIO else "err ") + name)
        if not forever:
            return
        time.sleep(0.05)
for i in range(4):
    threading.Thread(target=worker, args=("t%d" % i, True), daemon=True).start()
n = 0
while True:
    time.sleep(0.3)
    n += 1
    threading.Thread(target=worker, args=("new%d" % n, False), daemon=True).start()
PY
"$PY" "$T/threads.py" "$T/pydata" "$T/py.log" &
PPID_=$!
OWNED_PIDS+=("$PPID_")
wait_until 10 at_least "ok t3" "$T/py.log" 2
NT=$(ls /proc/$PPID_/task | wc -l)
((NT >= 5)) || fail "python3 has $NT threads, wanted at least 5"
[[ $(count eio "$T/py.log") == 0 ]] || fail "EIO before the fault: the test proves nothing"
attach_scenario "$T/py.json" "threads eio" "{\"pid\": $PPID_}" 2s "$T/pydata"
"$CHAOS" run "$T/py.json" >"$T/py.out" 2>&1 || fail "chaos run exited $?: $(cat "$T/py.out")"
grep -q "threads)" "$T/py.out" || fail "no thread count: $(cat "$T/py.out")"
for i in 0 1 2 3; do
    (($(count "eio t$i" "$T/py.log") >= 5)) || fail "thread t$i saw $(count "eio t$i" "$T/py.log") EIOs"
done
(($(grep -c '^eio new' "$T/py.log") >= 2)) || fail "threads started in the window were not followed"
[[ $(count err "$T/py.log") == 0 ]] || fail "a write failed with another errno: $(grep ^err "$T/py.log" | head -3)"
untraced "$PPID_" || fail "python3 is still traced"
E=$(count eio "$T/py.log")
O=$(count "ok t0" "$T/py.log")
wait_until 5 at_least "ok t0" "$T/py.log" $((O + 5))
[[ $(count eio "$T/py.log") == "$E" ]] || fail "EIO after the window"
ok "python3 with $NT threads: every thread, and threads started in the window, saw EIO; untraced after"

# 3. SIGKILL of chaos run mid-window (30s): the tracer goes with it, the loop
#    is untraced at once and writes again; the guard says it recovered.
attach_scenario "$T/kill.json" "kill mid" "{\"pid\": $SPID}" 30s "$T/data"
F0=$(count fail "$T/sh.log")
"$CHAOS" run "$T/kill.json" >"$T/kill.out" 2>&1 &
CPID=$!
OWNED_PIDS+=("$CPID")
wait_until 10 at_least fail "$T/sh.log" $((F0 + 3))
TRACER=$(sed -n 's/^TracerPid:[[:space:]]*//p' "/proc/$SPID/status")
[[ $TRACER != 0 && $(cat "/proc/$TRACER/comm") == chaos-tracer ]] || fail "the loop's tracer is '$TRACER'"
# Signals during the window reach the loop: its USR1 trap runs, and a
# SIGSTOP stops it (job control) until SIGCONT, after which it goes on failing.
kill -USR1 "$SPID"
wait_until 3 at_least usr1 "$T/sh.log" 1
kill -STOP "$SPID"
wait_until 3 stopped "$SPID"
sleep 0.5
stopped "$SPID" || fail "the loop did not stay stopped under the tracer"
F2=$(count fail "$T/sh.log")
kill -CONT "$SPID"
wait_until 5 at_least fail "$T/sh.log" $((F2 + 3))
kill -KILL "$CPID"
wait "$CPID" 2>/dev/null || true
wait_until 5 untraced "$SPID"
wait_until 5 test ! -e "/proc/$TRACER"
F1=$(count fail "$T/sh.log")
OKS=$(count ok "$T/sh.log")
wait_until 5 at_least ok "$T/sh.log" $((OKS + 5))
[[ $(count fail "$T/sh.log") == "$F1" ]] || fail "writes fail after chaos run was killed"
wait_until 5 grep -q "chaos-guard: .*reverted syscall fault" "$T/kill.out"
cat "$T/kill.out"
[[ -z $(ls -A "$CHAOS_STATE_DIR/journal") ]] || fail "the guard left the journal behind"
"$CHAOS" recover >"$T/rec" 2>&1 || fail "chaos recover after the guard: $(cat "$T/rec")"
kill -0 "$SPID" || fail "the loop died"
ok "SIGKILL of chaos run mid-window: the tracer went with it, the loop is untraced and writes again (signals and SIGSTOP/SIGCONT in the window passed through)"

# 3a. The window ends while the loop is stopped (SIGSTOP): it is detached
#     and stays stopped, as it would untraced, until SIGCONT.
attach_scenario "$T/stop.json" "stopped" "{\"pid\": $SPID}" 1s "$T/data"
"$CHAOS" run "$T/stop.json" >"$T/stop.out" 2>&1 &
CPID=$!
OWNED_PIDS+=("$CPID")
wait_until 5 grep -q "applied" "$T/stop.out"
kill -STOP "$SPID"
wait "$CPID" || fail "chaos run exited $?: $(cat "$T/stop.out")"
untraced "$SPID" || fail "the stopped loop is still traced"
stopped "$SPID" || fail "the loop was not left stopped: $(grep State /proc/$SPID/status)"
sleep 0.3
stopped "$SPID" || fail "the loop did not stay stopped after the detach"
kill -CONT "$SPID"
OKS=$(count ok "$T/sh.log")
wait_until 5 at_least ok "$T/sh.log" $((OKS + 3))
ok "a window that ends while the target is stopped leaves it stopped and untraced; SIGCONT resumes it"

# 3b. Both chaos run and its guard SIGKILLed (as by power loss): the tracer
#     still ends with its parent, and `chaos recover` finds the journal,
#     checks that the loop is free of it and reports the fault reverted.
F0=$(count fail "$T/sh.log")
"$CHAOS" run "$T/kill.json" >"$T/kill2.out" 2>&1 &
CPID=$!
OWNED_PIDS+=("$CPID")
wait_until 10 at_least fail "$T/sh.log" $((F0 + 3))
GPID=$(pgrep -P "$CPID" -x chaos-guard) || fail "chaos run has no chaos-guard child"
kill -KILL "$GPID" "$CPID"
wait "$CPID" 2>/dev/null || true
wait_until 5 untraced "$SPID"
ls "$CHAOS_STATE_DIR"/journal/*.jsonl >/dev/null || fail "no journal left by the killed run"
"$CHAOS" recover >"$T/rec" 2>&1 || fail "chaos recover exited $?: $(cat "$T/rec")"
cat "$T/rec"
grep -q "reverted syscall fault" "$T/rec" || fail "recover did not say what it reverted"
[[ -z $(ls -A "$CHAOS_STATE_DIR/journal") ]] || fail "recovered journal not removed"
OKS=$(count ok "$T/sh.log")
wait_until 5 at_least ok "$T/sh.log" $((OKS + 3))
ok "chaos run and its guard SIGKILLed: the loop is untraced at once; chaos recover reports the fault reverted"

# 3c. A delay: a python3 loop's writes under $T/slow take 300ms in the window
#     (measured by the program), a SIGUSR1 sent while one is held reaches its
#     handler, and after the window writes are fast again.
mkdir -p "$T/slow"
cat >"$T/slow.py" <<'PY'
import os, signal, sys, time
log = open(sys.argv[2], "a", buffering=1)
signal.signal(signal.SIGUSR1, lambda s, f: log.write("usr1\n"))
fd = os.open(os.path.join(sys.argv[1], "f"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
while True:
    t = time.monotonic()
    os.write(fd, b"x\n")
    log.write("took %d\n" % int((time.monotonic() - t) * 1000))
    time.sleep(0.05)
PY
"$PY" "$T/slow.py" "$T/slow" "$T/slow.log" &
DPID=$!
OWNED_PIDS+=("$DPID")
wait_until 10 at_least took "$T/slow.log" 3
cat >"$T/slow.json" <<JSON
{"version": 1, "name": "slow",
 "faults": [{"name": "slow", "kind": "syscall", "duration": "2s", "target": {"pid": $DPID},
   "params": {"syscalls": ["write"], "delay": "300ms", "path_prefix": "$T/slow"}}]}
JSON
"$CHAOS" run "$T/slow.json" >"$T/slow.out" 2>&1 &
CPID=$!
OWNED_PIDS+=("$CPID")
wait_until 5 grep -q "applied" "$T/slow.out"
sleep 0.5
kill -USR1 "$DPID"
wait "$CPID" || fail "chaos run exited $?: $(cat "$T/slow.out")"
grep -q "^usr1" "$T/slow.log" || fail "the SIGUSR1 sent during a held write was lost"
SLOW=$(awk '$1 == "took" && $2 >= 280 && $2 < 1000' "$T/slow.log" | wc -l)
((SLOW >= 3)) || fail "only $SLOW writes took about 300ms: $(tr '\n' ' ' <"$T/slow.log")"
untraced "$DPID" || fail "python3 is still traced"
N=$(count took "$T/slow.log")
wait_until 5 at_least took "$T/slow.log" $((N + 5))
FAST=$(tail -n 4 "$T/slow.log" | awk '$1 == "took" && $2 < 100' | wc -l)
((FAST >= 3)) || fail "writes are still slow after the window: $(tail -n 4 "$T/slow.log" | tr '\n' ' ')"
ok "delay: $SLOW writes held 300ms in the window, a signal during a held write was delivered, fast after"

# 4. Refused before anything starts, the field named.
NOPID=$(( $(cat /proc/sys/kernel/pid_max) - 1 ))
while [[ -e /proc/$NOPID ]]; do NOPID=$((NOPID - 1)); done
attach_scenario "$T/bad.json" "bad" "{\"pid\": $NOPID}" 2s "$T/data"
set +e
"$CHAOS" validate "$T/bad.json" >"$T/bad.out" 2>&1
RC=$?
set -e
[[ $RC == 2 ]] && grep -q "target.pid: no process $NOPID is running" "$T/bad.out" ||
    fail "a pid nobody has: rc $RC: $(cat "$T/bad.out")"
attach_scenario "$T/bad.json" "bad" "{\"pid\": $SPID, \"command\": [\"true\"]}" 2s "$T/data"
set +e
"$CHAOS" run "$T/bad.json" >"$T/bad.out" 2>&1
RC=$?
set -e
[[ $RC == 2 ]] && grep -q "target: give either command .* not both" "$T/bad.out" ||
    fail "command and pid: rc $RC: $(cat "$T/bad.out")"
untraced "$SPID" || fail "a refused scenario touched the loop"
ok "a pid nobody has, and command with pid, are refused with the field named"

# 5. The agent's policy judges a running-process target as the process kind's.
agent_config a "\"policy\": {\"deny\": {\"process_names\": [\"$LOOP\"]}}"
start_agent a
body() { echo "{\"name\": \"s\", \"kind\": \"syscall\", \"target\": $1, \"params\": {\"syscalls\": [\"write\"], \"errno\": \"EIO\"}, \"duration\": \"2s\"}"; }
api POST /v1/faults "$(body '{"pid": 1}')"
[[ $CODE == 403 || $CODE == 400 ]] && jfield 'r["error"]' | grep -q "target.pid: 1 is init" || fail "PID 1: $CODE $(cat "$T/body")"
api POST /v1/faults "$(body "{\"pid\": $APID}")"
[[ $CODE == 403 ]] && jfield 'r["error"]' | grep -q "target.pid: $APID is the agent itself" || fail "the agent: $CODE $(cat "$T/body")"
api POST /v1/faults "$(body "{\"pid\": $SPID}")"
[[ $CODE == 403 ]] && jfield 'r["error"]' | grep -q "target.pid: process $SPID, named '$LOOP' is denied" ||
    fail "a denied name: $CODE $(cat "$T/body")"
api POST /v1/faults "$(body "{\"name\": \"$LOOP\"}")"
[[ $CODE == 403 ]] && jfield 'r["error"]' | grep -q "target.name: '$LOOP' is denied" || fail "a denied name selector: $CODE $(cat "$T/body")"
untraced "$SPID" || fail "a refused fault touched the loop"
# What the policy allows applies through the agent, and ends untraced.
api POST /v1/faults "{\"name\": \"a\", \"kind\": \"syscall\", \"target\": {\"pid\": $PPID_}, \"params\": {\"syscalls\": [\"write\"], \"errno\": \"EIO\", \"path_prefix\": \"$T/pydata\"}, \"duration\": \"1s\"}"
[[ $CODE == 201 ]] || fail "an allowed syscall fault: $CODE $(cat "$T/body")"
ID=$(jfield 'r["id"]')
wait_until 5 state_is "$ID" reverted
jfield '[e["detail"] for e in r["events"] if e["event"] == "reverted"][0]' | grep -qE "detached, [1-9][0-9]+ calls injected" ||
    fail "the agent's fault injected nothing: $(cat "$T/body")"
untraced "$PPID_" || fail "the agent left python3 traced"
kill -0 "$PPID_" || fail "python3 died"
ok "the agent's policy refuses PID 1, itself and denied names for a syscall fault, naming the field; an allowed one applies through the agent and ends untraced"
