#!/usr/bin/env bash
# Runs one of the verification examples (scenarios/verify-*.json) against the
# demo system with its monitoring: a Prometheus that scrapes the demo front's
# /metrics every second and evaluates demo/verify/rules.yml, and an
# Alertmanager it sends its alerts to (receiver: nobody, so nothing pages).
# Both are Debian's (prometheus, prometheus-alertmanager), started here on
# 127.0.0.1 with their data in a temp dir, and stopped again at the end, also
# on Ctrl-C. The front runs with circuit breakers (3 failures, 2 s open).
#
# usage: demo/run-verify.sh BUILD_DIR SCENARIO [chaos run args...]
#   e.g. demo/run-verify.sh build scenarios/verify-alert-fires-and-resolves.json
#
# Environment: PROM_PORT (9090), AM_PORT (9093), and run-demo.sh's DEMO_PORT
# (8080) and DEMO_WORKER_BASE_PORT (8081); the shipped examples use the defaults.
# Exit codes: chaos's (0 held, 1 a check failed, 2 invalid, 3 aborted); 2 usage
# error; 4 the demo or its monitoring could not be started.
set -u

prog=run-verify
say() { printf '%s: %s\n' "$prog" "$*" >&2; }
here=$(cd "$(dirname "$0")" && pwd)

if [ $# -lt 2 ] || [ "$1" = --help ] || [ "$1" = -h ]; then
    echo "usage: $0 BUILD_DIR SCENARIO [chaos run args...]" >&2
    exit 2
fi
prom_port=${PROM_PORT:-9090}
am_port=${AM_PORT:-9093}
demo_port=${DEMO_PORT:-8080}
for b in prometheus prometheus-alertmanager curl; do
    if ! command -v "$b" >/dev/null; then
        say "$b is not installed: apt-get install prometheus prometheus-alertmanager curl"
        exit 4
    fi
done
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$prom_port" "$am_port"; do
    if port_in_use "$p"; then
        say "port $p on 127.0.0.1 is already in use; stop what listens there, or set PROM_PORT / AM_PORT"
        exit 4
    fi
done

tmp=$(mktemp -d) || exit 4
pids=()
# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in "${pids[@]}"; do
        wait "$p" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cat >"$tmp/prometheus.yml" <<YML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [$here/verify/rules.yml]
alerting:
  alertmanagers: [{static_configs: [{targets: ["127.0.0.1:$am_port"]}]}]
scrape_configs:
  - job_name: demo
    static_configs: [{targets: ["127.0.0.1:$demo_port"]}]
YML
cat >"$tmp/alertmanager.yml" <<'YML'
route: {receiver: nobody, group_wait: 0s, group_interval: 1s, repeat_interval: 1h}
receivers: [{name: nobody}]
YML
# --rules.alert.resend-delay=1s: alerts sent before Prometheus's notifier has
# discovered Alertmanager are dropped, and resent only after this delay (1m
# by default).
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/prom-data" \
    --web.listen-address="127.0.0.1:$prom_port" --rules.alert.resend-delay=1s \
    >"$tmp/prometheus.log" 2>&1 &
pids+=("$!")
prometheus-alertmanager --config.file="$tmp/alertmanager.yml" --storage.path="$tmp/am-data" \
    --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= \
    >"$tmp/alertmanager.log" 2>&1 &
pids+=("$!")
for url in "http://127.0.0.1:$prom_port/-/ready" "http://127.0.0.1:$am_port/-/ready"; do
    for _ in $(seq 100); do
        curl -fs --noproxy '*' -o /dev/null "$url" && break
        sleep 0.1
    done
    if ! curl -fs --noproxy '*' -o /dev/null "$url"; then
        say "$url did not answer within 10 s; logs:"
        tail -n 5 "$tmp"/*.log >&2
        exit 4
    fi
done
say "prometheus on 127.0.0.1:$prom_port, alertmanager on 127.0.0.1:$am_port"

# The scenario starts once Prometheus has scraped the front twice (a rate
# needs two points) and knows its Alertmanager.
ready="for i in \$(seq 150); do
  curl -fs --noproxy '*' 'http://127.0.0.1:$prom_port/api/v1/query?query=count_over_time(up%7Bjob%3D%22demo%22%7D%5B5s%5D)%3E%3D2' | grep -q '\"value\"' &&
  curl -fs --noproxy '*' 'http://127.0.0.1:$prom_port/api/v1/alertmanagers' | grep -q '127.0.0.1:$am_port' && exit 0
  sleep 0.1
done; echo 'prometheus did not scrape the demo front within 15 s' >&2; exit 1"
trap ':' INT
DEMO_FRONT_ARGS="--breaker-failures 3 --breaker-open 2s ${DEMO_FRONT_ARGS:-}" \
    DEMO_READY_CMD="$ready" "$here/run-demo.sh" "$@"
