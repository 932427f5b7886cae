#!/usr/bin/env bash
# Syscall faults on programs nobody here wrote, launched by `chaos run`:
# sqlite3 gets ENOSPC only under one folder while a database elsewhere
# works; curl gets ECONNREFUSED on one port at most once, so curl with
# --retry-connrefused succeeds and curl without fails.
source "$(dirname "$0")/lib.bash"
command -v sqlite3 >/dev/null || fail "sqlite3 is not installed (dev.sh installs it)"
command -v curl >/dev/null || fail "curl is not installed (dev.sh installs it)"

# run_fault NAME TARGET PARAMS: chaos run of one 2s syscall fault; waits for
# the workload's status in $T/NAME.
run_fault() {
    cat >"$T/$1.json" <<JSON
{"version": 1, "name": "$1",
 "faults": [{"name": "$1", "kind": "syscall", "duration": "2s",
   "target": {"command": $2, "output_dir": "$T/$1"}, "params": $3}]}
JSON
    "$CHAOS" run "$T/$1.json" >"$T/$1.out" 2>&1 || fail "chaos run $1 exited $?: $(cat "$T/$1.out")"
    wait_until 10 test -e "$T/$1/status"
}

mkdir -p "$T/full" "$T/ok"
run_fault sqlite "[\"sh\", \"-c\", \"sqlite3 $T/full/a.db 'create table t(x); insert into t values (1);'; echo full=\$?; sqlite3 $T/ok/b.db 'create table t(x); insert into t values (7); select x from t;'; echo ok=\$?\"]" \
    "{\"syscalls\": [\"write\", \"pwrite64\"], \"errno\": \"ENOSPC\", \"path_prefix\": \"$T/full\"}"
cat "$T/sqlite/stdout" "$T/sqlite/stderr"
grep -q "^full=[1-9]" "$T/sqlite/stdout" || fail "sqlite3 under the prefix did not fail"
grep -q "database or disk is full" "$T/sqlite/stderr" || fail "sqlite3 did not report the error"
grep -q "^7$" "$T/sqlite/stdout" && grep -q "^ok=0$" "$T/sqlite/stdout" ||
    fail "sqlite3 outside the prefix was hit"
[[ $(sqlite3 "$T/ok/b.db" 'select x from t;') == 7 ]] || fail "the untouched database lacks its row"
ok "sqlite3: ENOSPC only under the path prefix; the other database works"

/usr/bin/python3 -m http.server 0 --bind 127.0.0.1 --directory "$T" >"$T/http.log" 2>&1 &
OWNED_PIDS+=($!)
wait_until 10 grep -q "port" "$T/http.log"
PORT=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$T/http.log" | head -1)
[[ -n $PORT ]] || fail "no http server port: $(cat "$T/http.log")"
echo hello >"$T/hello.txt"
curl -sf "http://127.0.0.1:$PORT/hello.txt" >/dev/null || fail "the server does not answer: the test proves nothing"

P="{\"syscalls\": [\"connect\"], \"errno\": \"ECONNREFUSED\", \"addr\": \"127.0.0.1\", \"port\": $PORT, \"max\": 1}"
run_fault plain "[\"curl\", \"-sS\", \"http://127.0.0.1:$PORT/hello.txt\"]" "$P"
[[ $(cat "$T/plain/status") == "exited 7" ]] || fail "curl without retry: $(cat "$T/plain/status"), wanted exited 7"
grep -qi "refused\|couldn't connect\|failed to connect" "$T/plain/stderr" || fail "curl stderr: $(cat "$T/plain/stderr")"
run_fault retry "[\"curl\", \"-sS\", \"--retry\", \"3\", \"--retry-connrefused\", \"--retry-delay\", \"1\", \"http://127.0.0.1:$PORT/hello.txt\"]" "$P"
[[ $(cat "$T/retry/status") == "exited 0" ]] || fail "curl with retry: $(cat "$T/retry/status"): $(cat "$T/retry/stderr")"
[[ $(cat "$T/retry/stdout") == hello ]] || fail "curl with retry got: $(cat "$T/retry/stdout")"
[[ $(cat "$T/retry/injected") == 1 ]] || fail "injected $(cat "$T/retry/injected"), wanted 1"
ok "curl: one refused connect; --retry-connrefused succeeds, plain curl fails with 7"
