#!/usr/bin/env bash
# The network fault against Debian's kernel: runs tests/vm/test_net_vm.c
# (built as $CHAOS_BUILD/tests/test_net_vm, plain or sanitizer build) inside
# the VM, once with every module (suite net/*) and then once per module a
# fault needs, in a kernel that refuses that module (suite missing/*), where
# the apply must fail naming that module and leave nothing behind.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${CHAOS_BUILD:?}"
bin=$CHAOS_BUILD/tests/test_net_vm
[[ -x $bin ]] || { echo "FAIL: $bin is not built" >&2; exit 1; }
"$here/vm-run" --timeout 600 -- "$bin" --filter 'net*/*'
# One guest for each missing module; its name also reaches the test
# (CHAOS_VM_NO_MODULES) so that it knows which error to expect.
for mod in sch_netem sch_prio cls_u32 ifb sch_ingress act_mirred; do
    echo "== without $mod"
    "$here/vm-run" --no-modules "$mod" --timeout 120 -- "$bin" --filter 'missing/*'
done
