# Shared by the parts of build.sh: where things go, logging, installing.

# The browser package: wasm, wasm-bindgen glue, the JS layer, constants.
PKG_DIR=www/pkg
# The browser module's crate: Rust (src/), JS layer (js/), tests (tests/).
BROWSER=crates/browser
WASM_TARGET=wasm32-unknown-unknown
# A reproducible wasm: the panic locations of dependencies would embed this
# machine's Cargo home (/root/.cargo/registry/...), so the frame's and the
# package's hashes would differ per machine. Remapped to fixed prefixes; set
# for every wasm32 build (package, clippy, browser tests) so that they share
# one cache. The same rustc version (`rustc -V`) gives the same bytes.
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="--remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo --remap-path-prefix=$PWD=/pseudoform"

log() { printf '\033[1m== %s\033[0m\n' "$*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

cargo_install() { # crate [args...]: try the locked dependency set first, then a fresh resolve
  cargo install --locked "$@" || cargo install "$@"
}

# The wasm-bindgen version pinned in Cargo.lock; the CLI must match it.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock
}
