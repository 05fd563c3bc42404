#!/bin/sh
# The whole suite, as CI runs it: lint, typecheck, then unit and integration tests.
set -eu
step() { printf '\n[flotilla] == %s ==\n' "$*" >&2; }
step "lint (biome)"
biome ci --colors=off .
step "typecheck (tsc)"
tsc -p tsconfig.json
step "tests (vitest: unit + integration against the test bed)"
mkdir -p .flotilla
results=.flotilla/vitest-results.json
rm -f "$results"
status=0
vitest run --reporter=default --reporter=json --outputFile.json="$results" "$@" || status=$?
# One plain closing line, whatever the reporter above printed.
if [ -f "$results" ]; then
  node -e '
    const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
  ' "$results"
fi
exit "$status"
