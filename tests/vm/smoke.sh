#!/usr/bin/env bash
# Smoke test of the UML harness (tests/uml/uml-run): exit statuses and output
# come out of the guest, and netem really delays packets inside it, which the
# host kernel of our CI machines cannot do. Run by ctest as uml_smoke; the
# network half runs inside the guest as `smoke.sh --guest`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
ok() { echo "ok: $*"; }

if [[ ${1:-} == --guest ]]; then
    [[ ${CHAOS_UML:-} == 1 ]] || fail "--guest is meant to run inside uml-run"
    X=chaos-t-smoke-x Y=chaos-t-smoke-y
    cleanup() {
        ip netns del "$X" 2>/dev/null || true
        ip netns del "$Y" 2>/dev/null || true
    }
    trap cleanup EXIT
    # rtt NS ADDR: prints the RTT of one ping in whole ms (fails on no reply).
    rtt() {
        local out
        out=$(ip netns exec "$1" ping -n -c 1 -W 3 "$2") || fail "no reply from $2: $out"
        [[ $out =~ time=([0-9]+)(\.[0-9]+)?\ ms ]] || fail "no time= in ping output: $out"
        echo "${BASH_REMATCH[1]}"
    }

    # Every exec costs tens of ms in UML: the veth is created with both ends
    # already in their namespaces.
    ip netns add "$X"
    ip netns add "$Y"
    ip -n "$X" link add chaos-t-sx type veth peer name chaos-t-sy netns "$Y"
    ip -n "$X" addr add 10.200.0.1/24 dev chaos-t-sx
    ip -n "$Y" addr add 10.200.0.2/24 dev chaos-t-sy
    ip -n "$X" link set chaos-t-sx up
    ip -n "$Y" link set chaos-t-sy up
    base=$(rtt "$X" 10.200.0.2)
    ok "ping across the veth pair: ${base} ms"

    tc -n "$X" qdisc add dev chaos-t-sx root netem delay 50ms
    tc -n "$X" qdisc show dev chaos-t-sx | grep -q 'netem.*delay 50ms' ||
        fail "netem qdisc not shown: $(tc -n "$X" qdisc show dev chaos-t-sx)"
    delayed=$(rtt "$X" 10.200.0.2)
    ((delayed >= 50)) || fail "RTT with netem delay 50ms is ${delayed} ms (< 50): netem did nothing"
    ok "netem delay 50ms: RTT ${delayed} ms (was ${base} ms)"

    cleanup
    trap - EXIT
    [[ -z $(ip netns list | grep chaos-t-smoke || true) ]] || fail "namespaces left: $(ip netns list)"
    ok "namespaces and links removed"
    exit 0
fi

# ---- on the host ----
: "${CHAOS_BUILD:?run through ctest (CHAOS_BUILD unset)}"
command -v linux.uml >/dev/null || fail "linux.uml missing: apt-get install user-mode-linux"
run=$here/uml-run

rc=0
"$run" -- false || rc=$?
[[ $rc == 1 ]] || fail "uml-run -- false exited $rc, wanted 1"
ok "uml-run passes a failing exit status out (false -> 1)"

errf=$(mktemp "$CHAOS_BUILD/uml-smoke.XXXXXX")
trap 'rm -f "$errf"' EXIT
rc=0
# shellcheck disable=SC2016 # expanded inside the guest, on purpose
out=$("$run" -- sh -c 'echo "out $CHAOS_UML $CHAOS_BUILD $PWD"; echo "err here" >&2; exit 3' \
    2>"$errf") || rc=$?
err=$(cat "$errf")
rm -f "$errf"
[[ $rc == 3 ]] || fail "exit 3 inside came out as $rc"
[[ $out == "out 1 $CHAOS_BUILD $(pwd -P)" ]] || fail "stdout from inside was '$out'"
[[ $err == *"err here"* ]] || fail "stderr from inside was '$err'"
ok "stdout, stderr, CHAOS_UML, CHAOS_BUILD and the working directory come through"

"$run" --timeout 120 -- bash "$here/smoke.sh" --guest || fail "the in-guest network check failed"

# The guest's /run is a tmpfs: nothing of its namespaces may show on the host.
[[ ! -e /run/netns/chaos-t-smoke-x && ! -e /run/netns/chaos-t-smoke-y ]] ||
    fail "the guest's netns files appeared in the host's /run/netns"
ok "host /run/netns untouched"
