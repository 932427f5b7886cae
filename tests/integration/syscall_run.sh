#!/usr/bin/env bash
# `chaos run` with a syscall fault on a command it launches: the 3rd open
# under a path fails with EIO (the workload's own stderr says so, files
# elsewhere work), the scenario's probe sees it during the window, calls pass
# after it, and the workload outlives a SIGKILLed `chaos run` untouched.
source "$(dirname "$0")/lib.bash"

OUT=$T/out1
D=$T/data
mkdir -p "$D" "$T/other"
cat >"$T/s.json" <<JSON
{"version": 1, "name": "syscall-eio",
 "faults": [{"name": "disk errors", "kind": "syscall", "duration": "1500ms",
   "target": {"command": ["sh", "-c", "for i in 1 2 3 4 5; do echo \$i > $D/f\$i || echo fail \$i >&2; echo \$i > $T/other/f\$i; done; sleep 2.5; echo late > $D/late"],
              "output_dir": "$OUT"},
   "params": {"strace": "inject=openat:error=EIO:when=3", "path_prefix": "$D"}}],
 "expect": [{"name": "the workload saw EIO", "during": "disk errors", "every": "200ms",
   "probe": {"command": {"argv": ["grep", "-q", "Input/output error", "$OUT/stderr"]}},
   "expect": {"success_ratio": ">= 0.5"}}]}
JSON
rc=0
"$CHAOS" run "$T/s.json" >"$T/out" 2>&1 || rc=$?
cat "$T/out"
[[ $rc == 0 ]] || fail "chaos run exited $rc, wanted 0"
wait_until 10 test -e "$OUT/status"
[[ $(cat "$OUT/status") == "exited 0" ]] || fail "workload status: $(cat "$OUT/status")"
for i in 1 2 4 5; do [[ -e $D/f$i ]] || fail "f$i missing: the fault hit more than the 3rd open"; done
[[ ! -e $D/f3 ]] || fail "f3 exists: the 3rd open was not failed"
[[ $(ls "$T/other" | wc -l) == 5 ]] || fail "files outside the path prefix were hit"
grep -q "cannot create $D/f3: Input/output error" "$OUT/stderr" || fail "stderr: $(cat "$OUT/stderr")"
[[ -e $D/late ]] || fail "after the window the open still failed"
[[ $(cat "$OUT/injected") == 1 ]] || fail "injected: $(cat "$OUT/injected")"
ok "EIO on the 3rd open under the prefix only, seen by the probe; calls pass after the window"

# SIGKILL of chaos run mid-fault: the workload keeps running and is never
# answered ENOSYS; its writes to the faulted path failed only in the window.
OUT=$T/out2
cat >"$T/k.json" <<JSON
{"version": 1, "name": "syscall-kill",
 "faults": [{"name": "write errors", "kind": "syscall", "duration": "60s",
   "target": {"command": ["sh", "-c", "i=0; while [ \$i -lt 20 ]; do echo \$i >> $T/log; echo \$i > $T/bad || true; i=\$((i+1)); sleep 0.1; done; echo done"],
              "output_dir": "$OUT"},
   "params": {"syscalls": ["openat", "write", "read"], "errno": "EIO", "path_prefix": "$T/bad"}}]}
JSON
"$CHAOS" run "$T/k.json" >"$T/kout" 2>&1 &
CPID=$!
OWNED_PIDS+=("$CPID")
wait_until 10 test -s "$T/log"
sleep 0.3
kill -KILL "$CPID"
wait "$CPID" 2>/dev/null || true
wait_until 15 test -e "$OUT/status"
[[ $(cat "$OUT/status") == "exited 0" ]] || fail "workload status after the SIGKILL: $(cat "$OUT/status")"
[[ $(cat "$OUT/stdout") == done ]] || fail "workload stdout: $(cat "$OUT/stdout")"
[[ $(wc -l <"$T/log") == 20 ]] || fail "the workload's log has $(wc -l <"$T/log") lines, wanted 20"
grep -q "Input/output error" "$OUT/stderr" || fail "the fault never hit: the test proves nothing"
! grep -q "not implemented\|Function not implemented" "$OUT/stderr" || fail "the workload saw ENOSYS"
[[ -z $(ls -A "$CHAOS_STATE_DIR/journal" 2>/dev/null) ]] || fail "journal left behind: $(cat "$CHAOS_STATE_DIR"/journal/*)"
ok "SIGKILL of chaos run: the workload ran to its end, exit 0, no ENOSYS"

# Bad specs are refused before anything starts, naming the field.
cat >"$T/b.json" <<JSON
{"version": 1, "name": "syscall-bad",
 "faults": [{"name": "bad", "kind": "syscall", "duration": "1s",
   "target": {"command": ["true"]}, "params": {"syscalls": ["getpid"], "errno": "EIO", "path_prefix": "/tmp"}}]}
JSON
rc=0
"$CHAOS" validate "$T/b.json" >"$T/bout" 2>&1 || rc=$?
[[ $rc == 2 ]] || fail "validate exited $rc, wanted 2: $(cat "$T/bout")"
grep -q "faults\[0\] 'bad': params.path_prefix: getpid takes no path" "$T/bout" || fail "error: $(cat "$T/bout")"
ok "a path filter on a syscall without a path is refused, naming the field"
