#!/usr/bin/env bash
# Issue 12, item 2, on the host (no netem needed: nothing is installed, the
# point is which namespace recovery goes to and what it says). A network
# fault's journal names its namespace by nsfs identity; recovery finds it
# there even when the recorded path is dead, and when the namespace is gone
# it says so ("nothing to revert ... is gone") instead of "reverted". Needs
# root; makes namespaces chaos-t-rid-* and removes them.
source "$(dirname "$0")/lib.bash"
[[ $(id -u) == 0 ]] || { echo "skipped: needs root"; exit 0; }
ns=chaos-t-rid-$$
gone=chaos-t-ridg-$$
trap 'ip netns del "$ns" 2>/dev/null || true; ip netns del "$gone" 2>/dev/null || true; cleanup' EXIT
ip netns add "$ns"
ip netns add "$gone"
read -r dev ino < <(stat -L -c '%d %i' "/run/netns/$ns")
read -r gdev gino < <(stat -L -c '%d %i' "/run/netns/$gone")
ip netns del "$gone" # nothing else holds it: the namespace is gone now

J=$CHAOS_STATE_DIR/journal
mkdir -p "$J"
# net_journal FILE NETNS_PATH DEV INO: a crashed run's journal (pid 4194304
# is above any pid_max in use here) with one network fault on lo, slot 0.
net_journal() {
    printf '%s\n' '{"op":"open","pid":4194304,"start":1,"at":1}' \
        "{\"op\":\"apply\",\"id\":\"f1-x\",\"kind\":\"network\",\"undo\":{\"netns\":\"$2\",\"ns_dev\":$3,\"ns_ino\":$4,\"ifindex\":1,\"ifname\":\"lo\",\"owner\":\"0123456789abcdef0123456789abcdef\",\"egress_slot\":0},\"deadline\":1,\"at\":1}" >"$1"
}
net_journal "$J/run-found.jsonl" /proc/4194304/ns/net "$dev" "$ino"
net_journal "$J/run-gone.jsonl" "/run/netns/$gone" "$gdev" "$gino"
net_journal "$J/run-moved.jsonl" "/run/netns/$ns" "$gdev" "$gino"

"$CHAOS" recover >"$T/rec" 2>&1 || fail "recover exited $?: $(cat "$T/rec")"
cat "$T/rec"
grep -q "^$J/run-found.jsonl: reverted network fault f1-x left by a crashed run" "$T/rec" ||
    fail "recovery did not find the namespace by its identity"
want="nothing to revert: its network namespace (nsfs device $gdev inode $gino, was /run/netns/$gone) is gone, and its qdiscs with it"
grep -qF "$J/run-gone.jsonl: network fault f1-x left by a crashed run: $want" "$T/rec" ||
    fail "a gone namespace was not reported as gone"
want="nothing to revert: its network namespace (nsfs device $gdev inode $gino, was /run/netns/$ns) is gone"
grep -qF "$J/run-moved.jsonl: network fault f1-x left by a crashed run: $want" "$T/rec" ||
    fail "a path that names another namespace now was not reported as the namespace gone"
! grep -q "run-gone.jsonl: reverted\|run-moved.jsonl: reverted" "$T/rec" || fail "a gone fault was reported as reverted"
[[ -z $(ls -A "$J") ]] || fail "journals left: $(ls "$J")"
ok "recovery finds a namespace by identity, and says when it is gone"
