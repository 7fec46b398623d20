#!/usr/bin/env bash
# pseudoform build script. Usage: ./build.sh [command]
#
#   build   build the browser package into www/pkg/ (default)
#   demo    build, and run the whole chain (TTP + two registries + demo form) on loopback
#   test    lints, native tests, browser tests, page tests: the one test command
#   lint    Rust (rustfmt, clippy -D warnings native and wasm32) and JS (prettier, eslint)
#   setup   install everything the commands above need (each also installs what it needs)
#   fuzz    run every cargo-fuzz target for FUZZ_SECONDS each (installs cargo-fuzz)
#   bench   build, release binaries; TTP load, size and browser benchmarks: one table
#
# Each command installs only what it needs, skipping what is there (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")"

source scripts/common.sh   # paths, log, installing
source scripts/setup.sh    # what each command needs
source scripts/package.sh  # build: the browser package
source scripts/lint.sh     # lint: Rust and JS
source scripts/test.sh     # test: every runner, one count
source scripts/run.sh      # demo, fuzz, bench: the binaries at work

case "${1:-build}" in
  setup) setup ;;
  build) needs_build; build ;;
  test) test_all ;;
  demo) shift; demo "$@" ;;
  lint) needs_wasm_target; needs_npm; lint ;;
  fuzz) fuzz ;;
  sizes) sizes ;;
  bench) bench ;;
  *) echo "usage: $0 [build|demo|test|lint|setup|fuzz|sizes|bench]" >&2; exit 2 ;;
esac
