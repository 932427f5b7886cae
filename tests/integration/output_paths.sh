#!/usr/bin/env bash
# Every path `chaos run` writes is checked before any fault is applied (exit 2,
# the flag named, the victim never paused), and a special file named as a
# report is written in place, never replaced by a regular file (issue 13).
source "$(dirname "$0")/lib.bash"
trap 'chattr -i "$T/immutable" 2>/dev/null || true; cleanup' EXIT

start_victim ct-out-$$
pause_scenario "$T/s.json" "$VPID" 300ms
cp "$T/s.json" "$T/s.orig"
touch "$T/regular" "$T/immutable"
chattr +i "$T/immutable"
mkdir "$T/folder"

refused() { # FLAG VALUE NEEDLE: a run with FLAG VALUE exits 2 naming FLAG, touching nothing
    local rc=0
    "$CHAOS" run "$T/s.json" "$1" "$2" >"$T/o" 2>&1 || rc=$?
    [[ $rc == 2 ]] || fail "$1 '$2': exit $rc, wanted 2: $(cat "$T/o")"
    grep -qF -- "chaos: $1" "$T/o" || fail "$1 '$2': the error does not name $1: $(cat "$T/o")"
    grep -qF -- "$3" "$T/o" || fail "$1 '$2': wanted '$3' in: $(cat "$T/o")"
    ! grep -q "applied" "$T/o" || fail "$1 '$2': a fault was applied: $(cat "$T/o")"
    is_running "$VPID" || fail "$1 '$2': the victim was touched"
}

for flag in --report-json --junit; do
    refused $flag "$T/folder" "is a folder"
    refused $flag /proc/version "is on procfs"
    refused $flag "$T/immutable" "cannot be written: Operation not permitted"
    refused $flag "$T/regular/r.xml" "$T/regular is not a folder"
    refused $flag "$T/nope/r.xml" "folder $T/nope: does not exist"
    refused $flag "" "the value is empty"
    refused $flag "$T/s.json" "is the scenario file itself"
done
cmp -s "$T/s.json" "$T/s.orig" || fail "the scenario file was changed"
refused --state-dir "" "the value is empty"
refused --state-dir "$T/regular/state" "$T/regular is not a folder"
refused --state-dir "$T/immutable" "is not a folder"
mkdir "$T/ro" && chattr +i "$T/ro" && trap 'chattr -i "$T/immutable" "$T/ro" 2>/dev/null || true; cleanup' EXIT
refused --state-dir "$T/ro/state" "folder $T/ro is not writable"
chattr -i "$T/ro"
# Unwritable for the user who runs chaos (root may write any mode, so nobody).
chmod 755 "$T"
touch "$T/readonly" && chmod 444 "$T/readonly"
rc=0
setpriv --reuid=65534 --regid=65534 --clear-groups env CHAOS_STATE_DIR="$T/folder" \
    "$CHAOS" run "$T/s.json" --junit "$T/readonly" >"$T/o" 2>&1 || rc=$?
[[ $rc == 2 ]] && grep -q -- "--junit $T/readonly: cannot be written: Permission denied" "$T/o" ||
    fail "an unwritable file: exit $rc: $(cat "$T/o")"
rc=0
setpriv --reuid=65534 --regid=65534 --clear-groups \
    "$CHAOS" run "$T/s.json" --state-dir "$T/folder/state" >"$T/o" 2>&1 || rc=$?
[[ $rc == 2 ]] && grep -q -- "--state-dir $T/folder/state: folder $T/folder is not writable" "$T/o" ||
    fail "an unwritable state folder: exit $rc: $(cat "$T/o")"
is_running "$VPID" || fail "the victim was touched"
chmod 700 "$T"
rc=0
"$CHAOS" run "$T/s.json" --report-json "$T/same" --junit "$T/same" >"$T/o" 2>&1 || rc=$?
[[ $rc == 2 ]] && grep -q "is also the --report-json file" "$T/o" || fail "same file twice: $rc $(cat "$T/o")"
"$CHAOS" run "$T/s.json" --report-json >"$T/o" 2>&1 && fail "a missing value was accepted"
grep -q "option '--report-json' needs a value (it is missing)" "$T/o" || fail "missing value: $(cat "$T/o")"
ok "bad output paths: exit 2 naming the flag before any fault"

# /dev/null stays a character device; a FIFO gets the report through its reader.
mkfifo "$T/fifo"
cat "$T/fifo" >"$T/from-fifo" &
reader=$!
OWNED_PIDS+=("$reader")
"$CHAOS" run "$T/s.json" --junit /dev/null --report-json "$T/fifo" >"$T/o" 2>&1 ||
    fail "run into /dev/null and a FIFO exited $?: $(cat "$T/o")"
[[ -c /dev/null ]] || fail "/dev/null is no longer a character device"
wait "$reader" || true
[[ -p $T/fifo ]] || fail "the FIFO was replaced"
[[ $(json_get "$T/from-fifo" 'r["faults"][0]["outcome"]') == reverted ]] ||
    fail "the FIFO's reader did not get the report: $(cat "$T/from-fifo")"
ok "special files are written in place"
