#!/usr/bin/env node
// Where the time of one blind goes: `node bench/probe.mjs`.
//
// Builds bench/probe (each piece of a blind as a wasm export that loops n
// times inside wasm) with the browser package's release profile and
// wasm-opt -Oz, twice — curve25519-dalek at opt-level 2 (the package's
// profile) and at "s" (6.7 KB smaller, docs/size.md) — and times every piece
// in headless Chromium; and times the browser package built with "s"
// (bench/variants.mjs dalek-s) beside www/pkg's prepare(). Both builds use
// curve25519-dalek's 32-bit field backend, its default on wasm32 (the 64-bit
// one is 2.4× slower there: no 64×64→128-bit multiply in wasm).
// Needs what `./build.sh setup` installs (wasm32 target,
// wasm-bindgen CLI, npm ci); builds go to target/bench-probe/. Prints one
// table; exits 0.
import { spawnSync } from "node:child_process";
import { createServer } from "node:http";
import { existsSync, readFileSync, statSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const TARGET = join(ROOT, "target", "bench-probe");
/** name → curve25519-dalek's opt-level (the rest of the probe at "z", as the package). */
const VARIANTS = { o2: "2", os: '"s"' };
const WASM_OPT_FEATURES = [
  "--enable-bulk-memory",
  "--enable-nontrapping-float-to-int",
  "--enable-sign-ext",
  "--enable-reference-types",
  "--enable-multivalue",
  "--enable-mutable-globals",
];
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
  const r = spawnSync(cmd, args, {
    cwd,
    stdio: ["ignore", process.stderr, process.stderr],
    env: { ...process.env, ...env },
  });
  if (check && r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed`);
  return r.status === 0;
}

/** The browser package with curve25519-dalek at "s" (bench/variants.mjs), for its prepare(). */
function buildPackageS() {
  return run("node", [join(ROOT, "bench", "variants.mjs"), "dalek-s"], {}, ROOT, false);
}

function build(name, level) {
  const target = join(TARGET, name);
  process.stderr.write(`probe: building ${name} (curve25519-dalek opt-level ${level})\n`);
  run(
    "cargo",
    [
      "build",
      "--release",
      "--target",
      "wasm32-unknown-unknown",
      "--quiet",
      "--config",
      `profile.release.package.curve25519-dalek.opt-level=${level}`,
    ],
    { CARGO_TARGET_DIR: target },
  );
  const out = join(target, "pkg");
  run("wasm-bindgen", [
    "--target",
    "web",
    "--out-dir",
    out,
    "--out-name",
    "probe",
    join(target, "wasm32-unknown-unknown", "release", "pseudoform_bench_probe.wasm"),
  ]);
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
    const headers = {
      "Cross-Origin-Opener-Policy": "same-origin",
      "Cross-Origin-Embedder-Policy": "require-corp",
      "Cache-Control": "no-store",
    };
    if (path === "/") return res.writeHead(200, { ...headers, "Content-Type": "text/html" }).end(PAGE);
    const variants = join(ROOT, "target", "bench-variants");
    const [base, file] = path.startsWith("/probe/")
      ? [TARGET, normalize(join(TARGET, path.slice(7)))]
      : path.startsWith("/variant/")
        ? [variants, normalize(join(variants, path.slice(9)))]
        : path.startsWith("/www/pkg/")
          ? [join(ROOT, "www", "pkg"), normalize(join(ROOT, path))]
          : [null, null];
    if (
      !base ||
      !file.startsWith(base + sep) ||
      !existsSync(file) ||
      !statSync(file).isFile() ||
      !mime[extname(file)]
    ) {
      return res.writeHead(404, headers).end();
    }
    return res.writeHead(200, { ...headers, "Content-Type": mime[extname(file)] }).end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

for (const [name, bits] of Object.entries(VARIANTS)) build(name, bits);
if (!existsSync(join(ROOT, "www", "pkg", "index.js"))) run(join(ROOT, "build.sh"), ["build"], {}, ROOT);
const packages = { "www/pkg": "/www/pkg/index.js" };
if (buildPackageS()) packages.pkgS = "/variant/dalek-s/pkg/index.js";
else process.stderr.write('probe: the package with curve25519-dalek at "s" could not be built; skipped\n');
const server = await serve();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
  ],
});
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => process.stderr.write(`probe: ${e.message}\n`));
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  await page.waitForFunction(() => typeof window.probe === "function");
  const r = await page.evaluate(
    ([v, p, k]) => window.probe(v, p, k),
    [Object.keys(VARIANTS), PIECES.map(([id]) => id), packages],
  );
  const f = (x) => `${x.median.toFixed(1).padStart(7)} µs (min ${x.min.toFixed(1).padStart(6)})`;
  const rows = [["piece (µs per call, median of 25 batches)", "curve25519-dalek opt-level 2 (today)", 'opt-level "s"']];
  for (const [id, label] of PIECES) rows.push([`${id}: ${label}`, f(r[`o2.${id}`]), f(r[`os.${id}`])]);
  const gz = (dir) =>
    `${(gzipSync(readFileSync(join(dir, "pseudoform_bg.wasm")), { level: 9 }).length / 1024).toFixed(1)} KB gz wasm`;
  rows.push(["the package: prepare() GG, canonical (JS API)", f(r["www/pkg"]), r.pkgS ? f(r.pkgS) : "(not built)"]);
  rows.push([
    "the package: size",
    gz(join(ROOT, "www", "pkg")),
    r.pkgS ? gz(join(ROOT, "target", "bench-variants", "dalek-s", "pkg")) : "",
  ]);
  const w = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  for (const row of rows) console.log(row.map((c, i) => c.padEnd(w[i])).join("  "));
  console.log(
    `Chromium ${browser.version()}; share of r·P in Blind: ${((100 * r["o2.mul"].median) / r["o2.blind"].median).toFixed(0)} % (opt-level 2), ` +
      `${((100 * r["os.mul"].median) / r["os.blind"].median).toFixed(0)} % ("s")`,
  );
} finally {
  await browser.close();
  server.close();
}
process.exit(0);
