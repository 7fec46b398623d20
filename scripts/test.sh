# `./build.sh test`: lints, native tests, browser tests of the wasm in
# Chromium and Firefox, TypeScript checks, node and page tests; then one
# closing line that counts every runner's results.

# The browser tests (crates/browser/tests/web.rs) under wasm-bindgen's own
# runner, which drives the browser through its WebDriver; the runner reads
# the browser options from crates/browser/webdriver.json (cargo runs tests
# in the crate's directory). `browser_tests chrome|firefox`.
browser_tests() {
  local driver
  case "$1" in
    chrome) driver=(CHROMEDRIVER="$(command -v chromedriver)") ;;
    firefox) driver=(GECKODRIVER="$(command -v geckodriver)") ;;
  esac
  env "${driver[@]}" CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
    cargo test --profile wasm --target "$WASM_TARGET" -p pseudoform
}

# The sum over cargo's `test result:` lines and node's `# pass`/`# fail`
# lines of a log; fails when a test failed or none ran.
count_results() {
  awk '/test result:/ { for (i = 2; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
       /^# pass [0-9]+$/ { p += $3 } /^# fail [0-9]+$/ { f += $3 }
       END { printf "all tests: %d passed, %d failed\n", p, f; exit (f > 0 || p == 0) }' "$1"
}

test_all() {
  local results; results=$(mktemp)
  setup
  lint
  log "test: native (cargo test)"
  cargo test --workspace --quiet 2>&1 | tee -a "$results"
  log "test: the TTP's tests again, its ledger and key versions in PostgreSQL (with-postgres)"
  cargo build --quiet -p pseudoform-testkit --bin with-postgres
  "${CARGO_TARGET_DIR:-target}/debug/with-postgres" cargo test -p pseudoform-ttp --quiet 2>&1 | tee -a "$results"
  build
  log "test: browser, headless Chromium (wasm-bindgen-test-runner)"
  browser_tests chrome 2>&1 | tee -a "$results"
  log "test: browser, headless Firefox (wasm-bindgen-test-runner)"
  browser_tests firefox 2>&1 | tee -a "$results"
  log "test: TypeScript: the JS layer against its declarations, the declarations as used"
  node_modules/.bin/tsc -p "$BROWSER/js"
  node_modules/.bin/tsc -p "$BROWSER/tests/types"
  services
  log "test: node tests of the package, page tests against the real chain (playwright-core + Chromium)"
  node --test --test-reporter=tap "$BROWSER/tests/js/" "$BROWSER/tests/pages/" 2>&1 | tee -a "$results"
  count_results "$results"
  rm -f "$results"
}
