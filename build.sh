#!/usr/bin/env bash
# pseudoform build script. Usage: ./build.sh [command]
#
#   setup   install what the build and tests need (idempotent, skips what is there)
#   build   build the browser package into www/pkg/ (default)
#   test    setup, lints, native tests, browser tests: the one test command
#   demo    setup, build, and run the whole chain (TTP + two registries + demo form) on loopback
#   lint    cargo fmt --check and clippy -D warnings, native and wasm32
#   fuzz    run the cargo-fuzz target for a bounded time (installs cargo-fuzz)
#   bench   setup, build, release binaries; TTP load, size and browser benchmarks: one table
set -euo pipefail
cd "$(dirname "$0")"

# rustc's wasm32 output uses these post-MVP features; wasm-opt must accept them.
WASM_OPT_FEATURES=(--enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext
  --enable-reference-types --enable-multivalue --enable-mutable-globals)
PKG_DIR=www/pkg

log() { printf '\033[1m== %s\033[0m\n' "$*"; }

# The wasm-bindgen version pinned in Cargo.lock; the CLI must match it.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock
}

cargo_install() { # crate [args...]: try the locked dependency set first, then a fresh resolve
  cargo install --locked "$@" || cargo install "$@"
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

setup() {
  log "setup: Rust wasm target"
  rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

  [ -f Cargo.lock ] || cargo generate-lockfile
  local want; want=$(wasm_bindgen_version)
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
    log "setup: wasm-bindgen-cli $want"
    cargo_install wasm-bindgen-cli --version "$want"
  fi
  if ! command -v geckodriver >/dev/null; then
    log "setup: geckodriver (for the Firefox run of the browser tests)"
    cargo_install geckodriver
  fi
  if ! command -v wasm-pack >/dev/null; then
    log "setup: wasm-pack"
    cargo_install wasm-pack
  fi

  local missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  command -v chromedriver >/dev/null || missing+=(chromium-driver)
  command -v firefox-esr >/dev/null || missing+=(firefox-esr)
  command -v node >/dev/null || missing+=(nodejs npm)
  # OpenSSL (RSA in the TTP and registry) and pkg-config to find it.
  dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  if [ ${#missing[@]} -gt 0 ]; then
    log "setup: Debian packages ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}"
  fi

  # Test tooling and a current binaryen (wasm-opt) from the npm registry, as
  # locked in package-lock.json. Debian's binaryen 108 exports the wrong table
  # for wasm-bindgen's externref table and breaks the module.
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    log "setup: npm ci (playwright-core, binaryen)"
    npm ci --no-audit --no-fund --loglevel=error
  fi
}

build() {
  log "build: browser package -> $PKG_DIR"
  wasm-pack build --release --target web --out-dir "../../$PKG_DIR" --out-name pseudoform --no-pack crates/browser
  local wasm="$PKG_DIR/pseudoform_bg.wasm"
  node_modules/.bin/wasm-opt "${WASM_OPT_FEATURES[@]}" -Oz --converge --strip-debug --strip-producers -o "$wasm.opt" "$wasm"
  mv "$wasm.opt" "$wasm"
  rm -f "$PKG_DIR/.gitignore" "$PKG_DIR/package.json" "$PKG_DIR/README.md"
  # The JS layer (typed API, TTP client, form binding) beside the wasm glue.
  cp crates/browser/js/*.js crates/browser/js/*.d.ts "$PKG_DIR/"
  integrity
  sizes
}

sri() { # file: its Subresource Integrity value
  printf 'sha384-%s' "$(openssl dgst -sha384 -binary "$1" | openssl base64 -A)"
}

# Subresource Integrity: the wasm's hash goes into the JS, the one-tag bundle
# (JS layer + glue + that hash) gets its own hash, which the form page carries.
integrity() {
  local wasm_sri bundle_sri
  wasm_sri=$(sri "$PKG_DIR/pseudoform_bg.wasm")
  printf '// Written by build.sh: the SRI hash of pseudoform_bg.wasm.\nexport const WASM_INTEGRITY = "%s";\n' \
    "$wasm_sri" >"$PKG_DIR/wasm-integrity.js"
  node_modules/.bin/esbuild "$PKG_DIR/auto.js" --bundle --format=esm --minify --log-level=warning \
    --outfile="$PKG_DIR/pseudoform-auto.js"
  bundle_sri=$(sri "$PKG_DIR/pseudoform-auto.js")
  sed "s|@@PSEUDOFORM_AUTO_INTEGRITY@@|$bundle_sri|g" www/index.template.html >www/index.html
  printf 'sri: pkg/pseudoform-auto.js %s\nsri: pkg/pseudoform_bg.wasm %s\n' "$bundle_sri" "$wasm_sri"
}

sizes() {
  local wasm="$PKG_DIR/pseudoform_bg.wasm" js="$PKG_DIR/pseudoform.js" layer
  local wz jz lz
  layer=$(cd "$PKG_DIR" && ls ../../crates/browser/js/*.js | xargs -n1 basename | sed "s|^|$PKG_DIR/|")
  wz=$(gzip -9 -c "$wasm" | wc -c); jz=$(gzip -9 -c "$js" | wc -c)
  # shellcheck disable=SC2086
  lz=$(cat $layer | gzip -9 | wc -c)
  printf 'size: pseudoform_bg.wasm %d B (gzip %d B), pseudoform.js glue %d B (gzip %d B), JS layer gzip %d B; wasm+glue gzip %d B, everything gzip %d B\n' \
    "$(wc -c <"$wasm")" "$wz" "$(wc -c <"$js")" "$jz" "$lz" "$((wz + jz))" "$((wz + jz + lz))"
}

lint() {
  log "lint: rustfmt"
  cargo fmt --all --check
  log "lint: clippy (native)"
  cargo clippy --workspace --all-targets --quiet -- -D warnings
  log "lint: clippy (wasm32)"
  # The core's tests and their dev-dependencies are native only.
  cargo clippy -p pseudoform-core --lib --target wasm32-unknown-unknown --quiet -- -D warnings
  cargo clippy -p pseudoform --lib --tests --target wasm32-unknown-unknown --quiet -- -D warnings
}

test_all() {
  local results; results=$(mktemp)
  setup
  lint
  log "test: native (cargo test)"
  cargo test --workspace --quiet 2>&1 | tee -a "$results"
  build
  log "test: browser (wasm-pack test --headless --chrome)"
  CHROMEDRIVER="$(command -v chromedriver)" wasm-pack test --headless --chrome --release crates/browser 2>&1 | tee -a "$results"
  log "test: browser (wasm-pack test --headless --firefox)"
  GECKODRIVER="$(command -v geckodriver)" wasm-pack test --headless --firefox --release crates/browser 2>&1 | tee -a "$results"
  log "test: TypeScript declarations (tsc --noEmit)"
  node_modules/.bin/tsc -p crates/browser/tests/types
  services
  log "test: pages of the built package against the real chain (playwright-core + Chromium)"
  node --test --test-reporter=tap crates/browser/tests/pages/ 2>&1 | tee -a "$results"
  # One closing line over every runner above (cargo's and node's).
  awk '/test result:/ { for (i = 2; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
       /^# pass [0-9]+$/ { p += $3 } /^# fail [0-9]+$/ { f += $3 }
       END { printf "all tests: %d passed, %d failed\n", p, f; exit (f > 0 || p == 0) }' "$results"
  rm -f "$results"
}

services() {
  log "build: TTP, registry and demo binaries (release)"
  cargo build --release --quiet -p pseudoform-ttp -p pseudoform-registry -p pseudoform-demo
}

demo() {
  setup
  build
  services
  log "demo: starting the chain (Ctrl-C to stop)"
  target/release/pseudoform-demo --dir target/demo --www www "$@"
}

fuzz() {
  command -v cargo-fuzz >/dev/null || cargo_install cargo-fuzz
  local seconds="${FUZZ_SECONDS:-60}"
  log "fuzz: normalise for ${seconds}s"
  (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run normalise -- -max_total_time="$seconds" -max_len=4096)
}

bench() {
  setup
  build
  services
  mkdir -p bench/results
  log "bench: the TTP on loopback under load (bench/ttp-load.mjs)"
  node bench/ttp-load.mjs --out bench/results/ttp.json
  log "bench: the package with curve25519-dalek at opt-level \"s\", for both numbers (bench/variants.mjs)"
  local variant; variant=$(node bench/variants.mjs dalek-s)
  log "bench: size and browser, side by side with the peers (bench/run.mjs)"
  node bench/run.mjs --wait-quiet 120 --variant "$variant" --ttp bench/results/ttp.json
}

case "${1:-build}" in
  setup) setup ;;
  build) build ;;
  test) test_all ;;
  demo) shift; demo "$@" ;;
  lint) lint ;;
  fuzz) fuzz ;;
  sizes) sizes ;;
  bench) bench ;;
  *) echo "usage: $0 [setup|build|test|demo|lint|fuzz|sizes|bench]" >&2; exit 2 ;;
esac
