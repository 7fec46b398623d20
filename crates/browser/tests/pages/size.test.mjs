// The size budget of the browser module: the wasm and its wasm-bindgen glue
// as built by ./build.sh build (www/pkg), gzip level 9 each (Node's zlib, as
// bench/run.mjs measures them), together at most 40 KB = 40 960 bytes.
// Benchmarks report and never fail; this budget is the one exception
// (docs/size.md says what keeps the module under it).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const PKG = join(fileURLToPath(new URL("../../../..", import.meta.url)), "www", "pkg");
const BUDGET = 40 * 1024;

const gzipped = (file) => gzipSync(readFileSync(join(PKG, file)), { level: 9 }).length;

test("wasm + glue stay within 40 KB gzipped", () => {
  const wasm = gzipped("pseudoform_bg.wasm");
  const glue = gzipped("pseudoform.js");
  assert.ok(
    wasm + glue <= BUDGET,
    `pseudoform_bg.wasm ${wasm} B + pseudoform.js ${glue} B = ${wasm + glue} B gzipped, over the budget of ${BUDGET} B by ${wasm + glue - BUDGET} B (see docs/size.md)`,
  );
});
