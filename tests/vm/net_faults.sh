#!/usr/bin/env bash
# The network fault against Debian's kernel: runs tests/vm/test_net_vm.c
# (built as $CHAOS_BUILD/tests/test_net_vm, plain or sanitizer build) inside
# the VM, once with every module (suites net/* and netrec/*) and then once per
# module a fault needs, in a kernel that refuses that module (suite
# missing/*), where the apply must fail naming that module and leave nothing
# behind.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${CHAOS_BUILD:?}"
bin=$CHAOS_BUILD/tests/test_net_vm
[[ -x $bin ]] || { echo "FAIL: $bin is not built" >&2; exit 1; }
"$here/vm-run" --timeout 600 -- "$bin" --filter 'net*/*'

# One guest for each missing module; its name also reaches the test
# (CHAOS_VM_NO_MODULES) so that it knows which error to expect. These assert
# errors and tc state, never timing, so two guests run at once (a guest keeps
# one CPU busy; the suite above, which measures RTTs, ran alone).
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mods=(sch_netem sch_prio cls_u32 ifb sch_ingress act_mirred)
declare -A pid
run_without() {
    "$here/vm-run" --no-modules "$1" --timeout 120 -- "$bin" --filter 'missing/*' \
        >"$out/$1.log" 2>&1
}
failed=()
for ((i = 0; i < ${#mods[@]}; i += 2)); do
    for mod in "${mods[@]:i:2}"; do
        run_without "$mod" &
        pid[$mod]=$!
    done
    for mod in "${mods[@]:i:2}"; do
        rc=0
        wait "${pid[$mod]}" || rc=$?
        echo "== without $mod (exit $rc)"
        cat "$out/$mod.log"
        ((rc == 0)) || failed+=("$mod")
    done
done
((${#failed[@]} == 0)) || { echo "FAIL: missing-module runs failed without: ${failed[*]}" >&2; exit 1; }
