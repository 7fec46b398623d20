# Lints of Rust and JS; any finding fails.

lint_rust() {
  log "lint: rustfmt"
  cargo fmt --all --check
  log "lint: clippy (native)"
  cargo clippy --workspace --all-targets --quiet -- -D warnings
  log "lint: clippy ($WASM_TARGET)"
  # The core's tests and their dev-dependencies are native only.
  cargo clippy -p pseudoform-core --lib --target "$WASM_TARGET" --quiet -- -D warnings
  cargo clippy -p pseudoform --lib --tests --target "$WASM_TARGET" --quiet -- -D warnings
}

lint_js() {
  log "lint: prettier (JS and TS formatting)"
  node_modules/.bin/prettier --check --log-level=warn .
  log "lint: eslint"
  node_modules/.bin/eslint --max-warnings=0 .
}

lint() {
  lint_rust
  lint_js
}
