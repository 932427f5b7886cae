#!/usr/bin/env bash
# The CLI contract: help, usage errors (exit 2, "try 'chaos --help'"),
# --dry-run and bad input touch nothing.
source "$(dirname "$0")/lib.bash"

expect_exit() { # CODE CMD...: runs CMD, output in $T/o, fails unless it exits CODE
    local want=$1 rc=0
    shift
    "$@" >"$T/o" 2>&1 || rc=$?
    [[ $rc == "$want" ]] || fail "'$*' exited $rc, wanted $want: $(cat "$T/o")"
}

expect_exit 0 "$CHAOS" --help
grep -q '^Usage: chaos' "$T/o" || fail "--help has no usage line"
grep -q 'Exit codes' "$T/o" || fail "--help does not explain exit codes"
expect_exit 2 "$CHAOS"
expect_exit 2 "$CHAOS" frobnicate
grep -q "unknown command 'frobnicate'; try 'chaos --help'" "$T/o" || fail "bad unknown-command message: $(cat "$T/o")"
expect_exit 2 "$CHAOS" run
grep -q "needs a scenario FILE" "$T/o" || fail "run without FILE: $(cat "$T/o")"
expect_exit 2 "$CHAOS" run x.json --bogus
grep -q "unknown option '--bogus'" "$T/o" || fail "unknown option not named: $(cat "$T/o")"
expect_exit 2 "$CHAOS" run "$T/missing.json"
grep -q "missing.json" "$T/o" || fail "missing file not named: $(cat "$T/o")"
expect_exit 0 "$CHAOS" version
# validate looks at every option before it reads any file.
expect_exit 2 "$CHAOS" validate "$T/missing.json" --junit x.xml
grep -q "validate: '--junit' is an option of 'chaos run', not of validate" "$T/o" ||
    fail "validate with a run flag: $(cat "$T/o")"
! grep -q "missing.json" "$T/o" || fail "validate read a file before checking its options: $(cat "$T/o")"
ok "help and usage errors"

start_victim ct-cli-$$
pause_scenario "$T/s.json" "$VPID" 5s
expect_exit 0 "$CHAOS" run "$T/s.json" --dry-run
grep -q "nothing will be touched" "$T/o" || fail "dry run did not print the plan"
grep -q "'pause victim' (process) for 5s" "$T/o" || fail "plan does not show the fault: $(cat "$T/o")"
is_running "$VPID" || fail "--dry-run touched the victim"
[[ ! -e $CHAOS_STATE_DIR ]] || fail "--dry-run created state"
grep -q "^     pause processes: pid $VPID$" "$T/o" || fail "plan does not say what the fault does: $(cat "$T/o")"
grep -q "^     now: the target matches 1 process: $VPID (ct-cli-$$)$" "$T/o" ||
    fail "plan does not say what the target matches now: $(cat "$T/o")"
# Each kind says what it would do, network faults without touching a qdisc.
expect_exit 0 "$CHAOS" run "$CHAOS_SOURCE/scenarios/demo-retries-hold.json" --dry-run
grep -q "^     kill with SIGKILL: name 'demo-worker', pick 1, 4 rounds every 1s$" "$T/o" ||
    fail "plan of a repeated kill: $(cat "$T/o")"
qdiscs=$(tc qdisc show dev lo)
expect_exit 0 "$CHAOS" run "$CHAOS_SOURCE/tests/scenarios/valid/network-demo-slow-worker.json" --dry-run
grep -q "^     delay 500ms on lo egress, dst 127.0.0.1/32 dport 8081 tcp$" "$T/o" ||
    fail "plan of a network fault: $(cat "$T/o")"
[[ $(tc qdisc show dev lo) == "$qdiscs" ]] || fail "--dry-run of a network fault changed lo's qdiscs"
ok "--dry-run prints the plan and touches nothing"

# Bad input: exit 2, nothing touched, no state written.
sed 's/"pause"/"pauze"/' "$T/s.json" >"$T/bad.json"
expect_exit 2 "$CHAOS" run "$T/bad.json"
grep -q "params.action" "$T/o" || fail "error does not name params.action: $(cat "$T/o")"
is_running "$VPID" || fail "a bad scenario touched the victim"
[[ ! -e $CHAOS_STATE_DIR ]] || fail "a bad scenario created state"
expect_exit 2 "$CHAOS" run "$T/s.json" --junit "$T/no/such/dir/j.xml"
grep -q -- "--junit" "$T/o" || fail "unwritable report path not named: $(cat "$T/o")"
is_running "$VPID" || fail "an unwritable report path still ran the scenario"
ok "bad scenario and bad report path: exit 2, nothing touched"

# A fault that cannot be applied: exit 3, and the report says why.
start_victim ct-gone-$$
gone=$VPID
kill -KILL "$gone"
wait "$gone" 2>/dev/null || true
pause_scenario "$T/gone.json" "$gone" 1s
expect_exit 3 "$CHAOS" run "$T/gone.json" --report-json "$T/r.json" --junit "$T/j.xml"
grep -q "^ABORTED: fault 'pause victim' could not be applied" "$T/o" || fail "no apply error: $(cat "$T/o")"
[[ $(json_get "$T/r.json" 'r["faults"][0]["outcome"]') == apply_failed ]] || fail "report outcome"
grep -q '<error message=' "$T/j.xml" || fail "JUnit has no <error> for the failed fault"
ok "a fault that cannot be applied: exit 3 with the reason"

# Every broken scenario of the corpus (tests/scenarios/broken.tsv, which the
# build writes into broken-corpus/): `chaos run` exits 2 and writes nothing.
export CHAOS_STATE_DIR="$T/state-broken"
n=0
for f in "$CHAOS_BUILD"/broken-corpus/*.json; do
    expect_exit 2 "$CHAOS" run "$f"
    grep -qF -- "$(cat "${f%.json}.expect")" "$T/o" || fail "$f: message lacks '$(cat "${f%.json}.expect")': $(cat "$T/o")"
    [[ ! -e $CHAOS_STATE_DIR ]] || fail "$f: a broken scenario created state"
    n=$((n + 1))
done
((n >= 30)) || fail "only $n broken scenarios in the corpus"
ok "$n broken scenarios: chaos run exits 2 naming the field, nothing written"
