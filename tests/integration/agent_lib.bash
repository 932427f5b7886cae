# Helpers of the agent_*.sh tests, sourced after lib.bash (which sets T,
# OWNED_PIDS, wait_until and json_get): a token, configs on free loopback
# ports, starting an agent, calling its API.
AGENT="$CHAOS_BUILD/agent/chaos-agent"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
head -c 32 /dev/urandom | base64 | tr -d '/+=' >"$T/token"
chmod 600 "$T/token"
TOKEN=$(cat "$T/token")
# agent_config NAME [EXTRA_FIELDS]: writes $T/NAME.json for a new port; sets PORT.
agent_config() {
    PORT=$(free_port)
    echo "{\"listen\": \"127.0.0.1:$PORT\", \"token_file\": \"$T/token\", \"journal\": \"$T/$1/journal.jsonl\", \"lease\": \"${LEASE:-1s}\"${2:+, $2}}" >"$T/$1.json"
}
# start_agent NAME: starts the agent of $T/NAME.json (log $T/NAME.log); sets APID.
start_agent() {
    "$AGENT" --config "$T/$1.json" 2>>"$T/$1.log" &
    APID=$!
    OWNED_PIDS+=("$APID")
    wait_until 5 curl -sf "http://127.0.0.1:$PORT/healthz" -o /dev/null
}
# api METHOD PATH [BODY]: the reply's body in $T/body, its status in CODE.
api() {
    CODE=$(curl -s -o "$T/body" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $TOKEN" \
        ${3:+-d "$3"} "http://127.0.0.1:$PORT$2")
}
# jfield PYEXPR: evaluates PYEXPR over the last reply as r.
jfield() { json_get "$T/body" "$1"; }
pause_body() { # pause_body PID DURATION [CONTROLLER]
    echo "{\"name\": \"pause $1\", \"kind\": \"process\", \"target\": {\"pid\": $1}, \"params\": {\"action\": \"pause\"}, \"duration\": \"$2\"${3:+, \"controller\": \"$3\"}}"
}
fault_state() { api GET "/v1/faults/$1" && jfield 'r["state"]'; }
state_is() { [[ $(fault_state "$1") == "$2" ]]; }
