# The browser package in www/pkg: the wasm (cargo + wasm-bindgen + wasm-opt),
# the JS layer and its generated constants, the one-tag bundles, Subresource
# Integrity hashes and the size line; and the identity frame's files in
# target/frame (docs/frame.md), which a frame host serves.

# rustc's wasm32 output uses these post-MVP features; wasm-opt must accept them.
WASM_OPT_FEATURES=(--enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext
  --enable-reference-types --enable-multivalue --enable-mutable-globals)
WASM_OPT_FLAGS=(-Oz --converge --strip-debug --strip-producers)

build() {
  log "build: browser module ($WASM_TARGET, profile wasm) -> $PKG_DIR"
  # The `wasm` profile (Cargo.toml): size-tuned, panics abort; the servers' `release` unwinds.
  cargo build --profile wasm --target "$WASM_TARGET" -p pseudoform --lib
  rm -rf "$PKG_DIR"
  mkdir -p "$PKG_DIR"
  wasm-bindgen --target web --out-dir "$PKG_DIR" --out-name pseudoform \
    "target/$WASM_TARGET/wasm/pseudoform.wasm"
  local wasm="$PKG_DIR/pseudoform_bg.wasm"
  node_modules/.bin/wasm-opt "${WASM_OPT_FEATURES[@]}" "${WASM_OPT_FLAGS[@]}" -o "$wasm.opt" "$wasm"
  mv "$wasm.opt" "$wasm"
  # The JS layer (typed API, TTP and registry clients, form binding) beside
  # the glue, and the lists it takes from the Rust core.
  cp "$BROWSER"/js/*.js "$BROWSER"/js/*.d.ts "$PKG_DIR/"
  cargo run --quiet -p pseudoform-js-constants -- "$PKG_DIR"
  integrity
  frame
  sizes
}

sri() { # file: its Subresource Integrity value
  node -e 'const { createHash } = require("node:crypto");
    process.stdout.write("sha384-" + createHash("sha384").update(require("node:fs").readFileSync(process.argv[1])).digest("base64"));' "$1"
}

# Subresource Integrity: the wasm's hash goes into the JS, the one-tag bundle
# (JS layer + glue + that hash) gets its own hash, which the form page carries.
integrity() {
  local wasm_sri bundle_sri identity_sri workbench_sri
  wasm_sri=$(sri "$PKG_DIR/pseudoform_bg.wasm")
  printf '// Written by build.sh: the SRI hash of pseudoform_bg.wasm.\nexport const WASM_INTEGRITY = "%s";\n' \
    "$wasm_sri" >"$PKG_DIR/wasm-integrity.js"
  node_modules/.bin/esbuild "$PKG_DIR/auto.js" --bundle --format=esm --minify --log-level=warning \
    --outfile="$PKG_DIR/pseudoform-auto.js"
  bundle_sri=$(sri "$PKG_DIR/pseudoform-auto.js")
  # The frame mode's tag: the form part and the parent's side of the frame, no wasm.
  node_modules/.bin/esbuild "$PKG_DIR/identity-auto.js" --bundle --format=esm --minify --log-level=warning \
    --outfile="$PKG_DIR/pseudoform-identity.js"
  identity_sri=$(sri "$PKG_DIR/pseudoform-identity.js")
  # The provider's validation page (served by the provider, e.g. the demo portal), which
  # fetches pseudoform_bg.wasm beside itself with its hash.
  node_modules/.bin/esbuild "$PKG_DIR/validation-page.js" --bundle --format=esm --minify --log-level=warning \
    --outfile="$PKG_DIR/pseudoform-validation.js"
  # Its page and style, so that the package holds every file a provider serves.
  cp www/validation.html www/validation.css "$PKG_DIR/"
  # The processors' workbench (www/workbench/, docs/processors.md): its modules beside the
  # JS layer they import, bundled with papaparse (npm) into one script that only it loads.
  mkdir -p "$PKG_DIR/workbench"
  cp "$BROWSER"/js/workbench/*.js "$PKG_DIR/workbench/"
  node_modules/.bin/esbuild "$PKG_DIR/workbench/page.js" --bundle --format=esm --minify --log-level=warning \
    --outfile="$PKG_DIR/pseudoform-workbench.js"
  workbench_sri=$(sri "$PKG_DIR/pseudoform-workbench.js")
  # Its Web Worker, a bundle of its own from this origin (worker-src 'self', never blob:); it fetches
  # pseudoform_bg.wasm beside itself with its hash, as the page does.
  node_modules/.bin/esbuild "$PKG_DIR/workbench/worker.js" --bundle --format=esm --minify --log-level=warning \
    --outfile="$PKG_DIR/pseudoform-workbench-worker.js"
  # The pages that carry a tag: the demo forms, the examples of docs/embedding.md, the workbench.
  local template
  for template in www/*.template.html www/examples/*.template.html www/workbench/*.template.html; do
    sed -e "s|@@PSEUDOFORM_AUTO_INTEGRITY@@|$bundle_sri|g" -e "s|@@PSEUDOFORM_IDENTITY_INTEGRITY@@|$identity_sri|g" \
      -e "s|@@PSEUDOFORM_WORKBENCH_INTEGRITY@@|$workbench_sri|g" "$template" >"${template%.template.html}.html"
  done
  printf 'sri: pkg/pseudoform-auto.js %s\nsri: pkg/pseudoform-identity.js %s\nsri: pkg/pseudoform_bg.wasm %s\nsri: pkg/pseudoform-workbench.js %s\n' \
    "$bundle_sri" "$identity_sri" "$wasm_sri" "$workbench_sri"
}

# The identity frame in target/frame: its page (with the hashes of its
# script and style), the bundle of the frame's script, the JS layer and the
# glue (the wasm fetched with its hash, as in www/pkg), the wasm, the style,
# and manifest.json with every file's hash (keys sorted, no time: two builds
# of one tree give the same bytes, which a registry or auditor compares).
FRAME_DIR=target/frame
frame() {
  rm -rf "$FRAME_DIR"
  mkdir -p "$FRAME_DIR"
  node_modules/.bin/esbuild "$PKG_DIR/frame-page.js" --bundle --format=esm --minify --log-level=warning \
    --outfile="$FRAME_DIR/frame.js"
  cp "$PKG_DIR/pseudoform_bg.wasm" "$FRAME_DIR/"
  cp "$BROWSER/frame/frame.css" "$FRAME_DIR/"
  sed -e "s|@@FRAME_JS_INTEGRITY@@|$(sri "$FRAME_DIR/frame.js")|" \
    -e "s|@@FRAME_CSS_INTEGRITY@@|$(sri "$FRAME_DIR/frame.css")|" \
    "$BROWSER/frame/index.html" >"$FRAME_DIR/index.html"
  local f sep="" entries=""
  for f in frame.css frame.js index.html pseudoform_bg.wasm; do
    printf 'sri: frame/%s %s\n' "$f" "$(sri "$FRAME_DIR/$f")"
    entries+="$sep\"$f\":\"$(sri "$FRAME_DIR/$f")\""
    sep=","
  done
  printf '{"version":1,"files":{%s}}\n' "$entries" >"$FRAME_DIR/manifest.json"
  printf 'sri: frame/manifest.json %s\n' "$(sri "$FRAME_DIR/manifest.json")"
}

# One line: the wasm, the glue, the JS layer (the files of js/ and the
# constants, concatenated) and their sums, gzip -9.
sizes() {
  local wasm="$PKG_DIR/pseudoform_bg.wasm" js="$PKG_DIR/pseudoform.js" layer=() f
  # The form's layer: the provider's validation page and its key store are not loaded by a form.
  for f in "$BROWSER"/js/*.js; do
    case "$(basename "$f")" in validation-page.js | provider-keys.js) continue ;; esac
    layer+=("$PKG_DIR/$(basename "$f")")
  done
  layer+=("$PKG_DIR/constants.js")
  local wz jz lz
  wz=$(gzip -9 -c "$wasm" | wc -c); jz=$(gzip -9 -c "$js" | wc -c)
  lz=$(cat "${layer[@]}" | gzip -9 | wc -c)
  printf 'size: pseudoform_bg.wasm %d B (gzip %d B), pseudoform.js glue %d B (gzip %d B), JS layer gzip %d B; wasm+glue gzip %d B, everything gzip %d B\n' \
    "$(wc -c <"$wasm")" "$wz" "$(wc -c <"$js")" "$jz" "$lz" "$((wz + jz))" "$((wz + jz + lz))"
  # Frame mode: the parent's tag, and what the frame loads beyond the wasm.
  local tz fz az
  tz=$(gzip -9 -c "$PKG_DIR/pseudoform-identity.js" | wc -c)
  fz=$(( $(gzip -9 -c "$FRAME_DIR/frame.js" | wc -c) + $(gzip -9 -c "$FRAME_DIR/index.html" | wc -c) \
    + $(gzip -9 -c "$FRAME_DIR/frame.css" | wc -c) ))
  az=$(gzip -9 -c "$PKG_DIR/pseudoform-auto.js" | wc -c)
  printf 'size: frame mode: pseudoform-identity.js gzip %d B; frame.js + index.html + frame.css gzip %d B (pseudoform-auto.js gzip %d B)\n' \
    "$tz" "$fz" "$az"
  printf 'size: provider validation page: pseudoform-validation.js gzip %d B (+ the wasm)\n' \
    "$(gzip -9 -c "$PKG_DIR/pseudoform-validation.js" | wc -c)"
}
