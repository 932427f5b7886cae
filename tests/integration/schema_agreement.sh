#!/usr/bin/env bash
# The JSON Schema (scenarios/scenario.schema.json) and the parser behind
# `chaos validate` must agree on the corpus:
#   - scenarios/*.json, tests/scenarios/valid/*.json and the templates of the
#     broken-scenario table (tests/scenarios/broken/templates/) pass both;
#   - every case of the table (tests/scenarios/broken.tsv), as the build wrote
#     it into $CHAOS_BUILD/broken-corpus/, fails both: `chaos validate` with
#     exit 2 and "FIELD: FRAGMENT" of NAME.expect on stderr. The schema may
#     pass only the cases listed in SCHEMA_BLIND below: mistakes a JSON Schema
#     cannot express (the parser's job, see the schema's top-level description).
#
# Needs python3-jsonschema (Debian package) for /usr/bin/python3.
# Environment (set by ctest): CHAOS_SOURCE (source tree), CHAOS_BUILD (build tree).
set -u

SRC=${CHAOS_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${CHAOS_BUILD:-$SRC/build}
CHAOS=$BUILD/controller/chaos
CORPUS=$BUILD/broken-corpus
SCHEMA=$SRC/scenarios/scenario.schema.json
PY=/usr/bin/python3

# Broken scenarios the schema cannot reject, each with the reason. Every one
# of them must still pass the schema, so the list stays honest.
declare -A SCHEMA_BLIND=(
    [duplicate-fault-names]="names must be unique: JSON Schema cannot compare array items' fields"
    [duplicate-check-names]="names must be unique across three arrays"
    [during-unknown-fault]="during must name a fault of the scenario: a cross reference"
    [fault-agent-unknown]="a fault's agent must name one of the scenario's agents: a cross reference"
    [during-one-shot-kill]="during needs a fault active for a window: depends on the named fault's params"
    [fault-exceeds-max-duration]="at + every x count against max_duration: arithmetic across fields"
    [fault-exceeds-default-max-duration]="at + duration against the default max_duration: arithmetic"
    [every-too-small]="every >= 10ms: a bound on the value of a duration string"
    [bad-regex]="POSIX extended regex validity is not a JSON Schema notion"
    [duplicate-json-key]="JSON parsers keep the last of duplicate keys; only jansson's strict mode sees them"
    [within-longer-than-for]="within at most for: arithmetic across fields"
    [within-longer-than-during]="within at most the named fault's active time: a cross reference"
    [string-with-nul]="a NUL is valid JSON; that no field may hold one is the parser's rule"
    [http-head-with-body-check]="probe.http.method against the check's expect keys: across objects"
    [cgroup-root-target]="whether a path is a cgroup root is a fact of the machine, not of the text"
    [whole-window-of-one-shot-faults]="whether any fault lasts depends on every fault's params"
    [workload-unknown-fault]="a workload probe's fault must name a fault of the scenario: a cross reference"
    [workload-of-process-fault]="the named fault must be a syscall fault: a cross reference"
    [workload-of-running-process]="the named fault must launch a command: a cross reference"
    [workload-no-output-dir]="the named fault must have an output_dir: a cross reference"
)

failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

if ! "$PY" -c 'import jsonschema' 2>/dev/null; then
    echo "FAIL: $PY has no jsonschema module: apt-get install -y python3-jsonschema" >&2
    exit 1
fi
[ -f "$SCHEMA" ] || { echo "FAIL: $SCHEMA is missing" >&2; exit 1; }

shopt -s nullglob
valid=()
for f in "$SRC"/scenarios/*.json "$SRC"/tests/scenarios/valid/*.json \
    "$SRC"/tests/scenarios/broken/templates/*.json; do
    # The schema is JSON too, but not a scenario.
    [ "$f" = "$SCHEMA" ] || valid+=("$f")
done
broken=("$CORPUS"/*.json)
errfile=$(mktemp)
trap 'rm -f "$errfile"' EXIT

[ "${#valid[@]}" -ge 6 ] || fail "expected at least 6 valid scenarios, found ${#valid[@]}"
[ "${#broken[@]}" -ge 100 ] || fail "expected at least 100 broken scenarios in $CORPUS, found ${#broken[@]} (build the broken_corpus target)"

# ---- the schema: one python run prints "file<TAB>PASS" or "file<TAB>FAIL<TAB>why" per file
declare -A SCHEMA_VERDICT=()
schema_results=$("$PY" - "$SCHEMA" "${valid[@]}" "${broken[@]}" <<'EOF'
import json, sys
import jsonschema

with open(sys.argv[1]) as f:
    schema = json.load(f)
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
for path in sys.argv[2:]:
    try:
        with open(path) as f:
            doc = json.load(f)
    except ValueError as e:
        print("%s\tFAIL\tnot JSON: %s" % (path, e))
        continue
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        print("%s\tFAIL\t%s: %s" % (path, where, e.message.replace("\n", " ")[:300]))
    else:
        print("%s\tPASS" % path)
EOF
) || { echo "FAIL: the schema check itself failed (is the schema valid?)" >&2; exit 1; }

while IFS=$'\t' read -r path verdict why; do
    SCHEMA_VERDICT[$path]="$verdict${why:+: $why}"
done <<<"$schema_results"

for f in "${valid[@]}"; do
    line=${SCHEMA_VERDICT[$f]:-MISSING}
    case $line in
    PASS*) ;;
    *) fail "schema rejects valid $f: ${line#FAIL }" ;;
    esac
done

for f in "${broken[@]}"; do
    name=$(basename "$f" .json)
    line=${SCHEMA_VERDICT[$f]:-MISSING}
    if [ -n "${SCHEMA_BLIND[$name]+x}" ]; then
        case $line in
        PASS*) ;;
        *) fail "$name is listed as beyond the schema (${SCHEMA_BLIND[$name]}) but the schema rejects it: drop it from SCHEMA_BLIND" ;;
        esac
    else
        case $line in
        FAIL*) ;;
        *) fail "schema accepts broken $f (add a rule, or list it in SCHEMA_BLIND with the reason)" ;;
        esac
    fi
done
for name in "${!SCHEMA_BLIND[@]}"; do
    [ -f "$CORPUS/$name.json" ] || fail "SCHEMA_BLIND lists $name, which is no case of tests/scenarios/broken.tsv"
done

# ---- the parser, through `chaos validate`
if [ ! -x "$CHAOS" ]; then
    fail "$CHAOS is missing: build the chaos target"
else
    for f in "${valid[@]}"; do
        out=$("$CHAOS" validate "$f" 2>"$errfile")
        rc=$?
        errtext=$(cat "$errfile")
        [ "$rc" -eq 0 ] || fail "chaos validate $f: exit $rc, want 0: $errtext"
        grep -qF -- "$f: ok" <<<"$out" || fail "chaos validate $f: stdout lacks '$f: ok': $out"
    done
    # Several files in one call: exit 0 and one ok line each.
    out=$("$CHAOS" validate "${valid[@]}" 2>/dev/null)
    rc=$?
    [ "$rc" -eq 0 ] || fail "chaos validate with all ${#valid[@]} valid files: exit $rc, want 0"
    oks=$(grep -c ': ok' <<<"$out")
    [ "$oks" -eq "${#valid[@]}" ] || fail "chaos validate with ${#valid[@]} valid files printed $oks ok lines"

    for f in "${broken[@]}"; do
        name=$(basename "$f" .json)
        exp=$CORPUS/$name.expect
        if [ ! -f "$exp" ]; then
            fail "$exp is missing"
            continue
        fi
        want=$(head -n 1 "$exp")
        "$CHAOS" validate "$f" >/dev/null 2>"$errfile"
        rc=$?
        errtext=$(cat "$errfile")
        [ "$rc" -eq 2 ] || fail "chaos validate $name.json: exit $rc, want 2"
        grep -qF -- "$want" <<<"$errtext" || fail "chaos validate $name.json: stderr lacks \"$want\": $errtext"
        grep -qF -- "$f" <<<"$errtext" || fail "chaos validate $name.json: stderr does not name the file: $errtext"
    done
fi

total=$(( ${#valid[@]} + ${#broken[@]} ))
if [ "$failures" -gt 0 ]; then
    echo "schema_agreement: $failures failure(s) over $total files" >&2
    exit 1
fi
echo "schema_agreement: ${#valid[@]} valid and ${#broken[@]} broken scenarios agree (schema and chaos validate; ${#SCHEMA_BLIND[@]} broken ones are beyond the schema)"
