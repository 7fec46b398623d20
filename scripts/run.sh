# The release binaries and the commands that run them: the demo chain, the
# fuzzer and the benchmarks.

services() {
  log "build: TTP, registry, demo and batch-command binaries (release)"
  cargo build --release --quiet -p pseudoform-ttp -p pseudoform-registry -p pseudoform-demo -p pseudoform-cli
}

demo() {
  needs_build
  needs_services
  build
  services
  log "demo: starting the chain (Ctrl-C to stop)"
  # An absolute --dir: the demo writes the key paths into the servers'
  # configurations, which resolve relative paths against their own folder.
  target/release/pseudoform-demo --dir "$PWD/target/demo" --www www "$@"
}

# Every cargo-fuzz target for FUZZ_SECONDS each (default 60): the core's
# parsers, the registry's JWE/claims parsing and request body, the TTP's
# request bodies (no 5xx). A crash fails the command; its input is kept in
# fuzz/artifacts/.
FUZZ_TARGETS=(normalise jwe registry_submission ttp_request)

fuzz() {
  needs_services
  command -v cargo-fuzz >/dev/null || cargo_install cargo-fuzz
  local seconds="${FUZZ_SECONDS:-60}" target
  for target in "${FUZZ_TARGETS[@]}"; do
    log "fuzz: $target for ${seconds}s"
    (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- -max_total_time="$seconds" -max_len=4096 \
      -print_final_stats=1)
  done
}

bench() {
  needs_build
  needs_services
  # The browser part runs in Chromium.
  debian_install "chromium:chromium"
  build
  services
  mkdir -p bench/results
  log "bench: the TTP on loopback under load (bench/ttp-load.mjs)"
  node bench/ttp-load.mjs --out bench/results/ttp.json
  log "bench: the package with curve25519-dalek at opt-level \"s\", for both numbers (bench/variants.mjs)"
  local variant; variant=$(node bench/variants.mjs dalek-s)
  log "bench: size and browser, side by side with the peers (bench/run.mjs)"
  node bench/run.mjs --wait-quiet 120 --variant "$variant" --ttp bench/results/ttp.json
  log "bench: a submission through the identity frame and in the page, against the demo chain (bench/frame.mjs)"
  node bench/frame.mjs --out bench/results/frame.json
  log "bench: the native batch command, local work and end to end against the demo chain (bench/batch.mjs)"
  cargo build --release --quiet -p pseudoform-cli --example local_work
  node bench/batch.mjs --rows "${BATCH_BENCH_ROWS:-100000}" --out bench/results/batch.json
  log "bench: the TTP's keys in files and on a SoftHSM2 token, side by side (crates/ttp/examples/custody.rs)"
  cargo run --release --quiet -p pseudoform-ttp --example custody -- --out bench/results/custody.json
  log "bench: one TTP replica asked directly, one and three behind HAProxy (crates/ttp/examples/replicas.rs)"
  cargo run --release --quiet -p pseudoform-ttp --example replicas -- --out bench/results/replicas.json
  log "bench: the mixed load (single, forms under bulk, a burst) on one replica with SQLite and PostgreSQL, and three behind HAProxy (crates/ttp/examples/mixed.rs)"
  cargo run --release --quiet -p pseudoform-ttp --example mixed -- --out bench/results/mixed.json
  log "bench: the workbench from file to delivered (and to the CSV download), 1 Web Worker and all, in the page (bench/workbench.mjs)"
  node bench/workbench.mjs --rows "${WORKBENCH_BENCH_ROWS:-100000}" --modes deliver,csv --out bench/results/workbench.json
  log "bench: opening 1 000 reversible pseudonyms (type R) in the page, as the provider's validation page does (bench/validation.mjs)"
  node bench/validation.mjs --out bench/results/validation.json
}
