# What each command needs, installed only when it is missing:
#
#   needs_build     the wasm target, wasm-bindgen-cli at the Cargo.lock version,
#                   Node and the npm tools (wasm-opt, esbuild, prettier, eslint, tsc);
#                   the lints need the target and the npm tools only
#   needs_services  OpenSSL headers and pkg-config (the TTP and the registry), SoftHSM2,
#                   HAProxy and PostgreSQL (the TTP's keys on a PKCS#11 token, its replicas
#                   and their shared ledger, in the tests)
#   needs_browsers  Chromium, chromedriver, Firefox ESR, geckodriver and sqlite3 (page tests)
#
# `./build.sh setup` installs all three.

# Debian packages for the commands that are missing: "command:package ...".
# (libssl-dev has no command: it is checked with dpkg; postgresql by its
# server's binaries.)
debian_install() {
  local missing=() pair
  for pair in "$@"; do
    case "$pair" in
      libssl-dev) dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev) ;;
      # The server's binaries live under a versioned folder, not on PATH.
      postgresql) compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql) ;;
      # shellcheck disable=SC2206 # "node:nodejs npm" names two packages
      *) command -v "${pair%%:*}" >/dev/null || missing+=(${pair#*:}) ;;
    esac
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "setup: Debian packages ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}"
  fi
}

needs_wasm_target() {
  rustup target list --installed | grep -qx "$WASM_TARGET" || { log "setup: Rust $WASM_TARGET target"; rustup target add "$WASM_TARGET"; }
}

# wasm-bindgen-cli brings both wasm-bindgen (the build) and
# wasm-bindgen-test-runner (the browser tests).
needs_wasm_bindgen() {
  [ -f Cargo.lock ] || cargo generate-lockfile
  local want; want=$(wasm_bindgen_version)
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
    log "setup: wasm-bindgen-cli $want"
    cargo_install wasm-bindgen-cli --version "$want"
  fi
}

# The npm tools as locked in package-lock.json: binaryen's wasm-opt (Debian's
# binaryen 108 exports the wrong table for wasm-bindgen's externref table and
# breaks the module), esbuild, prettier, eslint, typescript, playwright-core.
needs_npm() {
  debian_install "node:nodejs npm" "npm:npm"
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    log "setup: npm ci"
    npm ci --no-audit --no-fund --loglevel=error
  fi
}

needs_build() {
  needs_wasm_target
  needs_wasm_bindgen
  needs_npm
}

needs_services() {
  # softhsm2: the PKCS#11 token of the TTP's key custody tests (crates/ttp/tests/hsm.rs);
  # haproxy: the load balancer in front of the TTP replicas (crates/ttp/tests/replicas.rs);
  # postgresql: the replicas' shared ledger (crates/ttp/tests/ledger.rs, replicas.rs), a
  # private server per test in a temporary folder (crates/testkit/src/postgres.rs).
  debian_install libssl-dev "pkg-config:pkg-config" "softhsm2-util:softhsm2" "/usr/sbin/haproxy:haproxy" postgresql
}

needs_browsers() {
  # sqlite3: the page tests edit a registry database as an attacker with write access would.
  debian_install "chromium:chromium" "chromedriver:chromium-driver" "firefox-esr:firefox-esr" "sqlite3:sqlite3"
  # geckodriver has no Debian package.
  if ! command -v geckodriver >/dev/null; then
    log "setup: geckodriver (the Firefox run of the browser tests)"
    cargo_install geckodriver
  fi
}

setup() {
  needs_build
  needs_services
  needs_browsers
}
