#!/usr/bin/env bash
# The network fault against a real kernel: runs tests/uml/test_net_uml.c
# (built as $CHAOS_BUILD/tests/test_net_vm) inside User-Mode Linux, once with
# every module (suite net/*) and then once without each module a fault needs
# (suite missing/*), where the apply must fail naming that module and leave
# nothing behind.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${CHAOS_BUILD:?}"
if grep -q '^CHAOS_SANITIZE:BOOL=ON' "$CHAOS_BUILD/CMakeCache.txt" 2>/dev/null; then
    echo "skipped: ASan binaries cannot run inside UML (shadow memory); the plain build runs this" >&2
    exit 77
fi
bin=$CHAOS_BUILD/tests/test_net_vm
[[ -x $bin ]] || { echo "FAIL: $bin is not built" >&2; exit 1; }
"$here/uml-run" --timeout 380 -- "$bin" --filter 'net*/*'
for mod in sch_netem sch_prio cls_u32 ifb sch_ingress act_mirred; do
    echo "== without $mod"
    CHAOS_UML_NO_MODULES=$mod "$here/uml-run" --timeout 120 -- "$bin" --filter 'missing/*'
done
