#!/bin/sh
# The whole suite, as CI runs it: lint, typecheck, then unit and integration tests.
set -eu
step() { printf '\n[flotilla] == %s ==\n' "$*" >&2; }
step "lint (biome)"
biome ci --colors=off .
step "typecheck (tsc)"
tsc -p tsconfig.json
step "tests (vitest: unit + integration against the test bed)"
vitest run "$@"
