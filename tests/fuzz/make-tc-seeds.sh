#!/usr/bin/env bash
# Makes the seeds of the tc snapshot fuzz target (tests/fuzz/corpus-tc/):
# builds real tc trees on a veth inside the VM (Debian's own kernel under
# QEMU, tests/vm/vm-run), whose kernel has every qdisc kind we replay, and
# writes a snapshot of each in the target's input format. Run from the
# source tree after a build:
#   CHAOS_BUILD=build tests/fuzz/make-tc-seeds.sh [SEED...]
# With SEED names (e.g. htb-netem-pie), only those seeds are written; without,
# all of them. Only needed when the snapshot's canonical form changes or a
# kind is added; the seeds are committed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${CHAOS_BUILD:?set CHAOS_BUILD to the build directory}"
build=$(cd "$CHAOS_BUILD" && pwd)
if [[ ${1:-} != --guest ]]; then
    exec "$here/../vm/vm-run" --timeout 300 -- env CHAOS_BUILD="$build" \
        bash "$here/make-tc-seeds.sh" --guest "$@"
fi
shift
wanted=("$@")

# The VM loads the modules of the kinds we use; the kernel loads any other
# on first use.
ns=chaos-t-seeds
out=$here/corpus-tc
take=$build/tests/fuzz_tc_snapshot
ip netns add $ns
trap 'ip netns del $ns' EXIT
ip -n $ns link add veth0 type veth peer name veth1
ip -n $ns link set veth0 up
ip -n $ns link set veth1 up
ip -n $ns link add mq0 numtxqueues 4 type veth peer name mq1 numtxqueues 4
ip -n $ns link set mq0 up
t() { tc -n $ns "$@"; }
seed() {  # seed NAME [DEV]: snapshot DEV (veth0) into NAME.bin, then clear the root
    local dev=${2:-veth0} keep=1
    if ((${#wanted[@]})); then
        keep=0
        for w in "${wanted[@]}"; do [[ $w == "$1" ]] && keep=1; done
    fi
    if ((keep)); then
        "$take" --take /run/netns/$ns "$dev" > "$out/$1.bin"
        echo "seed $1: $(stat -c %s "$out/$1.bin") bytes"
    fi
    t qdisc del dev "$dev" root
}

t qdisc add dev veth0 root handle 1: htb default 20 r2q 5
t class add dev veth0 parent 1: classid 1:1 htb rate 100mbit ceil 100mbit
t class add dev veth0 parent 1:1 classid 1:10 htb rate 10mbit ceil 50mbit prio 1 quantum 1500 burst 15k
t class add dev veth0 parent 1:1 classid 1:20 htb rate 20mbit ceil 100mbit
t qdisc add dev veth0 parent 1:10 handle 10: fq_codel limit 300 flows 128 target 2ms
t filter add dev veth0 parent 1: protocol ip prio 1 u32 match ip dst 10.0.0.1/32 flowid 1:10
t filter add dev veth0 parent 1: protocol ip prio 2 u32 match ip dport 80 0xffff flowid 1:20
t filter add dev veth0 parent 1:1 protocol ip prio 3 u32 match ip src 10.9.0.0/16 flowid 1:20
seed htb-fq_codel-u32

t qdisc add dev veth0 root handle 1: htb default 1
t class add dev veth0 parent 1: classid 1:1 htb rate 10mbit
t class add dev veth0 parent 1: classid 1:2 htb rate 10mbit
t filter add dev veth0 parent 1: prio 4 handle 2: protocol ip u32 divisor 16
t filter add dev veth0 parent 1: prio 1 protocol ip u32 ht 800:: match ip dst 10.1.0.0/16 hashkey mask 0x0000000f at 16 link 2:
t filter add dev veth0 parent 1: prio 4 protocol ip u32 ht 2:3: match ip dst 10.1.0.3/32 flowid 1:2 action mirred egress redirect dev veth1
t filter add dev veth0 parent 1: chain 3 prio 6 protocol ip u32 match ip dst 10.0.0.3/32 flowid 1:2
seed htb-u32-hash-mirred

t qdisc add dev veth0 root handle 5: stab overhead 24 tbf rate 6gbit burst 1mb latency 40ms
t qdisc add dev veth0 parent 5:1 handle 51: bfifo limit 30000
seed tbf-stab-bfifo

t qdisc add dev veth0 root handle 1: fq_codel limit 500 flows 256 target 3ms interval 50ms quantum 300 ecn ce_threshold 1ms memory_limit 8mb
seed fq_codel

t qdisc add dev veth0 root handle 1: prio bands 4 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1
t qdisc add dev veth0 parent 1:1 handle 11: sfq perturb 10 quantum 1600 limit 100
t qdisc add dev veth0 parent 1:2 handle 12: fq maxrate 100mbit flow_limit 50
t qdisc add dev veth0 parent 1:3 handle 13: codel target 4ms interval 40ms ecn
t filter add dev veth0 parent 1: prio 10 protocol ip handle 5 fw classid 1:2
t filter add dev veth0 parent 1: prio 11 protocol ip basic match 'cmp(u8 at 9 layer network eq 6)' classid 1:3
t filter add dev veth0 parent 1: prio 12 protocol all matchall classid 1:4 action gact ok random determ drop 10
seed prio-sfq-fq-codel-fw-basic-matchall

t qdisc add dev veth0 root handle 1: htb
t class add dev veth0 parent 1: classid 1:1 htb rate 1mbit
t class add dev veth0 parent 1: classid 1:2 htb rate 1mbit
t qdisc add dev veth0 parent 1:1 pfifo limit 5
t qdisc add dev veth0 parent 1:2 pfifo_head_drop limit 9
seed htb-auto-numbered-leaves

t qdisc add dev veth0 root handle 1: htb default 20
t class add dev veth0 parent 1: classid 1:10 htb rate 10mbit
t class add dev veth0 parent 1: classid 1:20 htb rate 10mbit
t class add dev veth0 parent 1: classid 1:30 htb rate 10mbit
t qdisc add dev veth0 parent 1:10 handle 10: netem delay 100ms loss 1% 25% duplicate 2% corrupt 0.1% reorder 25% 50% gap 5 rate 10mbit limit 500
t qdisc add dev veth0 parent 1:20 handle 20: pie target 20005us limit 500 tupdate 32ms alpha 2 beta 20 ecn bytemode
t qdisc add dev veth0 parent 1:30 handle 30: sfq perturb 10
seed htb-netem-pie-sfq

t qdisc add dev veth0 root handle 1: prio
t qdisc add dev veth0 parent 1:1 handle 11: cake bandwidth 100mbit besteffort flows wash ack-filter no-split-gso rtt 50ms overhead 18 mpu 64 memlimit 1mb fwmark 0xff
t qdisc add dev veth0 parent 1:2 handle 12: sfb limit 500 max 30 target 10
t qdisc add dev veth0 parent 1:3 handle 13: netem loss gemodel 1% 10% 70% 0.1% slot 1ms 5ms packets 10 bytes 20000
seed prio-cake-sfb-netem

t qdisc add dev veth0 root handle 1: hfsc default 20
t class add dev veth0 parent 1: classid 1:1 hfsc sc rate 50mbit ul rate 80mbit
t class add dev veth0 parent 1:1 classid 1:10 hfsc rt m1 5mbit d 10ms m2 2mbit ls rate 10mbit
t class add dev veth0 parent 1:1 classid 1:20 hfsc ls rate 30mbit
t qdisc add dev veth0 parent 1:10 handle 10: netem delay 2ms
t filter add dev veth0 parent 1: protocol ip prio 1 u32 match ip dst 10.0.0.1/32 flowid 1:10
seed hfsc-classes-netem

t qdisc add dev mq0 root handle 1: multiq
t qdisc add dev mq0 parent 1:2 handle 12: pfifo limit 50
t filter add dev mq0 parent 1: protocol ip prio 1 u32 match ip dst 10.0.0.1/32 flowid 1:2
seed multiq mq0

t qdisc add dev mq0 root handle 1: mqprio num_tc 2 map 0 0 0 0 1 1 1 1 0 0 0 0 0 0 0 0 queues 2@0 2@2 hw 0
seed mqprio mq0
