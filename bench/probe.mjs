#!/usr/bin/env node
// Where the time of one blind goes: `node bench/probe.mjs`.
//
// Builds bench/probe (each piece of a blind as a wasm export that loops n
// times inside wasm) with the browser package's release profile and
// wasm-opt -Oz, twice — curve25519-dalek's 64-bit field backend (what
// .cargo/config.toml selects for wasm32 today) and its 32-bit one — and
// times every piece in headless Chromium; and builds the browser package
// itself with the 32-bit backend to time its prepare() beside www/pkg's.
// Needs what `./build.sh setup` installs (wasm32 target,
// wasm-bindgen CLI, npm ci); builds go to target/bench-probe/. Prints one
// table; exits 0.
import { spawnSync } from "node:child_process";
import { createServer } from "node:http";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const TARGET = join(ROOT, "target", "bench-probe");
const VARIANTS = { u64: "64", u32: "32" };
const WASM_OPT_FEATURES = ["--enable-bulk-memory", "--enable-nontrapping-float-to-int", "--enable-sign-ext",
  "--enable-reference-types", "--enable-multivalue", "--enable-mutable-globals"];
const PIECES = [
  ["hkdf", "HKDF-SHA256 of the RFC 8785 identifier"],
  ["xmd", "expand_message_xmd SHA-512 → 64 B"],
  ["map", "ristretto255 one-way map (from_uniform_bytes)"],
  ["mul", "scalar multiplication r·P (constant time)"],
  ["compress", "point encoding (compress)"],
  ["blind", "RFC 9497 Blind = H2G + r·P + encode"],
  ["prepare", "core prepare GG, canonical (no JS, fixed random)"],
];

function run(cmd, args, env = {}, cwd = join(ROOT, "bench", "probe"), check = true) {
  const r = spawnSync(cmd, args, { cwd, stdio: ["ignore", process.stderr, process.stderr], env: { ...process.env, ...env } });
  if (check && r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed`);
  return r.status === 0;
}

/**
 * The browser package itself with the 32-bit backend, beside www/pkg (which
 * has the 64-bit one): same sources, Cargo.lock (--locked), profile and
 * wasm-opt; the JS layer copied from www/pkg. Returns false if it cannot be
 * built without touching Cargo.lock.
 */
function buildPackage32() {
  const target = join(TARGET, "pkg32");
  process.stderr.write("probe: building the browser package with curve25519_dalek_bits=32\n");
  if (!run("cargo", ["build", "--locked", "--release", "--target", "wasm32-unknown-unknown", "-p", "pseudoform", "--quiet"],
    { CARGO_TARGET_DIR: target, RUSTFLAGS: '--cfg curve25519_dalek_bits="32"' }, ROOT, false)) return false;
  const out = join(target, "pkg");
  mkdirSync(out, { recursive: true });
  for (const f of readdirSync(join(ROOT, "www", "pkg")).filter((f) => f.endsWith(".js") && f !== "pseudoform.js")) {
    copyFileSync(join(ROOT, "www", "pkg", f), join(out, f));
  }
  run("wasm-bindgen", ["--target", "web", "--out-dir", out, "--out-name", "pseudoform",
    join(target, "wasm32-unknown-unknown", "release", "pseudoform.wasm")]);
  const wasm = join(out, "pseudoform_bg.wasm");
  run(join(ROOT, "node_modules", ".bin", "wasm-opt"), [...WASM_OPT_FEATURES, "-Oz", "--strip-debug", "--strip-producers", "-o", wasm, wasm]);
  return true;
}

function build(name, bits) {
  const target = join(TARGET, name);
  process.stderr.write(`probe: building ${name} (curve25519_dalek_bits=${bits})\n`);
  // RUSTFLAGS replaces the [target] rustflags of .cargo/config.toml.
  run("cargo", ["build", "--release", "--target", "wasm32-unknown-unknown", "--quiet"],
    { CARGO_TARGET_DIR: target, RUSTFLAGS: `--cfg curve25519_dalek_bits="${bits}"` });
  const out = join(target, "pkg");
  run("wasm-bindgen", ["--target", "web", "--out-dir", out, "--out-name", "probe",
    join(target, "wasm32-unknown-unknown", "release", "pseudoform_bench_probe.wasm")]);
  const wasm = join(out, "probe_bg.wasm");
  run(join(ROOT, "node_modules", ".bin", "wasm-opt"), [...WASM_OPT_FEATURES, "-Oz", "--strip-debug", "-o", wasm, wasm]);
}

const PAGE = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">
<script type="module">
window.probe = async (variants, pieces, packages) => {
  const ops = {};
  const GG = { recipientOrganization: "oin:00000001234567890000", recipientScope: "nkr", types: ["GG"] };
  for (const [name, url] of Object.entries(packages)) {
    const { prepare, ready } = await import(url);
    await ready();
    ops[name] = (n) => { for (let i = 0; i < n; i++) prepare({ birthDate: "19800201", sex: "2" }, GG); };
  }
  for (const v of variants) {
    const m = await import("/probe/" + v + "/pkg/probe.js");
    await m.default();
    for (const p of pieces) ops[v + "." + p] = (n) => m[p](n);
  }
  const plan = {};
  for (const [k, f] of Object.entries(ops)) {
    f(200);
    const t0 = performance.now(); f(50);
    plan[k] = Math.max(20, Math.round(20 / ((performance.now() - t0) / 50)));  // ~20 ms a batch
  }
  const times = {};
  for (let round = 0; round < 25; round++) {
    for (const [k, f] of Object.entries(ops)) {
      const t0 = performance.now(); f(plan[k]);
      (times[k] ??= []).push((performance.now() - t0) * 1000 / plan[k]);
    }
  }
  const out = {};
  for (const [k, xs] of Object.entries(times)) { xs.sort((a, b) => a - b); out[k] = { median: xs[xs.length >> 1], min: xs[0] }; }
  return out;
};
</script>`;

function serve() {
  const mime = { ".js": "text/javascript", ".wasm": "application/wasm" };
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const headers = { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp", "Cache-Control": "no-store" };
    if (path === "/") return res.writeHead(200, { ...headers, "Content-Type": "text/html" }).end(PAGE);
    const [base, file] = path.startsWith("/probe/") ? [TARGET, normalize(join(TARGET, path.slice(7)))]
      : path.startsWith("/www/pkg/") ? [join(ROOT, "www", "pkg"), normalize(join(ROOT, path))] : [null, null];
    if (!base || !file.startsWith(base + sep) || !existsSync(file) || !statSync(file).isFile() || !mime[extname(file)]) {
      return res.writeHead(404, headers).end();
    }
    return res.writeHead(200, { ...headers, "Content-Type": mime[extname(file)] }).end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

for (const [name, bits] of Object.entries(VARIANTS)) build(name, bits);
if (!existsSync(join(ROOT, "www", "pkg", "index.js"))) run(join(ROOT, "build.sh"), ["build"], {}, ROOT);
const packages = { "www/pkg": "/www/pkg/index.js" };
if (buildPackage32()) packages.pkg32 = "/probe/pkg32/pkg/index.js";
else process.stderr.write("probe: the 32-bit package could not be built with --locked; skipped\n");
const server = await serve();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
});
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => process.stderr.write(`probe: ${e.message}\n`));
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  await page.waitForFunction(() => typeof window.probe === "function");
  const r = await page.evaluate(([v, p, k]) => window.probe(v, p, k), [Object.keys(VARIANTS), PIECES.map(([id]) => id), packages]);
  const f = (x) => `${x.median.toFixed(1).padStart(7)} µs (min ${x.min.toFixed(1).padStart(6)})`;
  const rows = [["piece (µs per call, median of 25 batches)", "64-bit backend (today)", "32-bit backend"]];
  for (const [id, label] of PIECES) rows.push([`${id}: ${label}`, f(r[`u64.${id}`]), f(r[`u32.${id}`])]);
  const gz = (dir) => `${(gzipSync(readFileSync(join(dir, "pseudoform_bg.wasm")), { level: 9 }).length / 1024).toFixed(1)} KB gz wasm`;
  rows.push(["the package: prepare() GG, canonical (JS API)", f(r["www/pkg"]), r.pkg32 ? f(r.pkg32) : "(not built)"]);
  rows.push(["the package: size", gz(join(ROOT, "www", "pkg")), r.pkg32 ? gz(join(TARGET, "pkg32", "pkg")) : ""]);
  const w = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  for (const row of rows) console.log(row.map((c, i) => c.padEnd(w[i])).join("  "));
  console.log(`Chromium ${browser.version()}; share of r·P in Blind: ${(100 * r["u64.mul"].median / r["u64.blind"].median).toFixed(0)} % (64-bit), `
    + `${(100 * r["u32.mul"].median / r["u32.blind"].median).toFixed(0)} % (32-bit)`);
} finally {
  await browser.close();
  server.close();
}
process.exit(0);
