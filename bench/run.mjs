#!/usr/bin/env node
// Benchmarks of pseudoform side by side with its peers:
//
//   node bench/run.mjs [--quick] [--pkg DIR] [--out DIR] [--variant LABEL=DIR]... [--ttp FILE]
//
//   --quick      smoke run: few iterations (~10 s); results go to a temporary folder
//   --pkg DIR    measure another build of www/pkg (e.g. a candidate build); ditto
//   --out DIR    where to write latest.txt, latest.json and browser.svg
//   --wait-quiet S  first wait up to S seconds until other processes leave the cores idle
//   --variant LABEL=DIR  also time (same page, same rounds) and size another build of
//                the package, e.g. one of bench/variants.mjs: both numbers of a profile choice
//   --ttp FILE   add the TTP load figures of bench/ttp-load.mjs (its JSON) to the table
//
//  1. size of the built browser package (www/pkg), raw / gzip -9 / brotli -q 11,
//     against the budget of 40 KB (40 960 B) gzipped for wasm + glue;
//  2. in one headless Chromium page (bench/page.mjs): blinding one pseudonym
//     with pseudoform, @noble/curves and @nolai/libpep-wasm, prepare() of
//     NGGV+RGG+MRN, and records/s in Web Workers;
//  3. prints one table, and writes it with the raw figures and an SVG chart
//     to bench/results/.
//
// Benchmarks report; they do not fail: the exit code is 0 unless the
// benchmark itself could not run. Nothing is installed at run time (the
// peers are devDependencies in package.json, installed by `npm ci`); the
// package is built with ./build.sh build only when www/pkg is missing.
import { spawnSync } from "node:child_process";
import { createServer } from "node:http";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants as zc, gzipSync } from "node:zlib";
import { chromium } from "playwright-core";

const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const argv = process.argv.slice(2);
/** The package measured: www/pkg, or another build of it given with --pkg DIR (to compare builds). */
const PKG = argv.includes("--pkg") ? resolve(argv[argv.indexOf("--pkg") + 1]) : join(ROOT, "www", "pkg");
const QUICK = argv.includes("--quick");
/** bench/results/ for a full run of www/pkg; a smoke run or another build goes to a temporary folder. */
const OUT = argv.includes("--out")
  ? resolve(argv[argv.indexOf("--out") + 1])
  : QUICK || argv.includes("--pkg")
    ? join(tmpdir(), "pseudoform-bench")
    : join(ROOT, "bench", "results");
const BUDGET_GZIP = 40 * 1024;
const TARGETS = { blindMedianUs: 150, vsNoble: 2, vsLibpep: 3, ttpEvaluationsPerSecond: 10_000, ttpP99Ms: 50 };
/** --variant LABEL=DIR (repeatable): other builds timed beside www/pkg. */
const VARIANTS = argv
  .flatMap((a, i) => (a === "--variant" && argv[i + 1] ? [argv[i + 1]] : []))
  .map((spec) => {
    const at = spec.lastIndexOf("=");
    return { label: spec.slice(0, at), dir: resolve(spec.slice(at + 1)) };
  });
/** --ttp FILE: the TTP load figures of bench/ttp-load.mjs. */
const TTP_FILE = argv.includes("--ttp") ? resolve(argv[argv.indexOf("--ttp") + 1]) : null;

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
];

const CONFIG = QUICK
  ? {
      timing: {
        warmupMs: 200,
        minWarmupCalls: 20,
        budgetMs: 500,
        minSamples: 50,
        maxSamples: 200,
        batchMs: 2,
        minBatches: 10,
        maxBatches: 40,
        rounds: 4,
      },
      throughput: { records: 300, reps: 2, warmupMs: 200 },
    }
  : {
      timing: {
        warmupMs: 1000,
        minWarmupCalls: 100,
        budgetMs: 6000,
        minSamples: 300,
        maxSamples: 2000,
        batchMs: 2,
        minBatches: 50,
        maxBatches: 400,
        rounds: 10,
      },
      throughput: { records: 3000, reps: 5, warmupMs: 1000 },
    };

const log = (s) => process.stderr.write(`${s}\n`);

// ---------------------------------------------------------------- 1. size

function ensureBuilt() {
  const needed = ["pseudoform_bg.wasm", "pseudoform.js", "index.js"].map((f) => join(PKG, f));
  if (needed.every((f) => existsSync(f))) return;
  if (argv.includes("--pkg")) throw new Error(`--pkg ${PKG}: needs pseudoform_bg.wasm, pseudoform.js and index.js`);
  log("bench: www/pkg is missing, running ./build.sh build");
  const r = spawnSync("./build.sh", ["build"], { cwd: ROOT, stdio: ["ignore", process.stderr, process.stderr] });
  if (r.status !== 0 || !needed.every((f) => existsSync(f))) throw new Error("./build.sh build failed");
}

function sizeOf(files) {
  let raw = 0,
    gzip = 0,
    brotli = 0;
  for (const f of files) {
    const bytes = readFileSync(f);
    raw += bytes.length;
    gzip += gzipSync(bytes, { level: 9 }).length;
    brotli += brotliCompressSync(bytes, {
      params: { [zc.BROTLI_PARAM_QUALITY]: zc.BROTLI_MAX_QUALITY, [zc.BROTLI_PARAM_SIZE_HINT]: bytes.length },
    }).length;
  }
  return { files: files.map((f) => (f.startsWith(ROOT) ? f.slice(ROOT.length + 1) : f)), raw, gzip, brotli };
}

function sizes() {
  const wasm = sizeOf([join(PKG, "pseudoform_bg.wasm")]);
  const glue = sizeOf([join(PKG, "pseudoform.js")]);
  // The one-tag bundle (build.sh: the JS layer + glue, minified) repeats
  // the others: listed on its own, not added to them.
  const BUNDLE = "pseudoform-auto.js";
  const layerFiles = readdirSync(PKG)
    .filter((f) => f.endsWith(".js") && f !== "pseudoform.js" && f !== BUNDLE)
    .sort();
  const layer = sizeOf(layerFiles.map((f) => join(PKG, f)));
  const bundle = existsSync(join(PKG, BUNDLE)) ? sizeOf([join(PKG, BUNDLE)]) : null;
  const sum = (...xs) => ({
    raw: xs.reduce((a, x) => a + x.raw, 0),
    gzip: xs.reduce((a, x) => a + x.gzip, 0),
    brotli: xs.reduce((a, x) => a + x.brotli, 0),
  });
  const core = sum(wasm, glue);
  const pepDir = join(ROOT, "node_modules", "@nolai", "libpep-wasm", "pkg-web");
  const libpep = sizeOf([join(pepDir, "libpep_bg.wasm"), join(pepDir, "libpep.js")]);
  const variants = VARIANTS.map((v) => ({
    label: v.label,
    ...sizeOf([join(v.dir, "pseudoform_bg.wasm"), join(v.dir, "pseudoform.js")]),
  }));
  return {
    wasm,
    glue,
    layer,
    layerFiles,
    bundle,
    core,
    all: sum(wasm, glue, layer),
    libpep,
    variants,
    budget: BUDGET_GZIP,
    verdict: core.gzip <= BUDGET_GZIP ? "PASS" : "OVER",
  };
}

// ---------------------------------------------------------------- 2. browser

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".css": "text/css",
  ".svg": "image/svg+xml",
};
const SERVED = [
  "/www/",
  "/bench/",
  "/node_modules/@noble/curves/",
  "/node_modules/@noble/hashes/",
  "/node_modules/@nolai/libpep-wasm/",
];

/** A loopback static server for www/, bench/ and the peers, cross-origin isolated. */
function serve() {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const inPkg = path.startsWith("/www/pkg/");
    const variant = /^\/variant\/(\d+)\//.exec(path);
    const variantDir = variant ? VARIANTS[Number(variant[1])]?.dir : undefined;
    const base = inPkg ? PKG : (variantDir ?? ROOT);
    const file = normalize(
      inPkg
        ? join(PKG, path.slice("/www/pkg/".length))
        : variantDir
          ? join(variantDir, path.slice(variant[0].length))
          : join(ROOT, path),
    );
    const ok =
      req.method === "GET" &&
      (SERVED.some((p) => path.startsWith(p)) || variantDir) &&
      !path.includes("..") &&
      file.startsWith(base + sep) &&
      existsSync(file) &&
      statSync(file).isFile() &&
      MIME[extname(file)];
    const headers = {
      "Cross-Origin-Opener-Policy": "same-origin",
      "Cross-Origin-Embedder-Policy": "require-corp",
      "Cross-Origin-Resource-Policy": "same-origin",
      "Cache-Control": "no-store",
    };
    if (!ok) {
      res.writeHead(404, { ...headers, "Content-Type": "text/plain" }).end("not found");
      return;
    }
    res.writeHead(200, { ...headers, "Content-Type": MIME[extname(file)] }).end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

/**
 * CPU time in jiffies: the whole machine's busy time, and that of this
 * process and its descendants (Chromium). The difference over the run tells
 * how much of the two cores other processes took while we measured.
 */
function cpuSnapshot() {
  try {
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    const busy = total - f[3] - (f[4] ?? 0);
    const procs = new Map();
    for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        procs.set(Number(pid), { ppid: Number(rest[1]), cpu: Number(rest[11]) + Number(rest[12]) });
      } catch {
        /* gone */
      }
    }
    const ours = new Set([process.pid]);
    for (let grew = true; grew;) {
      grew = false;
      for (const [pid, p] of procs)
        if (!ours.has(pid) && ours.has(p.ppid)) {
          ours.add(pid);
          grew = true;
        }
    }
    let own = 0;
    for (const pid of ours) own += procs.get(pid)?.cpu ?? 0;
    return { total, busy, own };
  } catch {
    return null;
  }
}

function othersCores(a, b) {
  if (!a || !b || b.total <= a.total) return null;
  return Math.max(0, (b.busy - a.busy - (b.own - a.own)) / ((b.total - a.total) / cpus().length));
}

async function browserBench() {
  const server = await serve();
  const base = `http://127.0.0.1:${server.address().port}`;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
  });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => (m.type() === "error" ? errors.push(m.text()) : log(m.text())));
    page.on("response", (r) => {
      if (r.status() !== 200) errors.push(`${r.status()} ${r.url()}`);
    });
    await page.goto(`${base}/bench/page.html`);
    try {
      await page.waitForFunction(() => typeof window.bench === "function", null, { timeout: 30_000 });
    } catch (error) {
      throw new Error(`the benchmark page did not load: ${errors.join(" | ") || error.message}`);
    }
    const before = cpuSnapshot();
    const variants = VARIANTS.map((v, i) => ({ label: v.label, url: `/variant/${i}/index.js` }));
    const results = await page.evaluate(([cfg, vs]) => window.bench(cfg, vs), [CONFIG, variants]);
    results.othersCores = othersCores(before, cpuSnapshot());
    results.browserVersion = browser.version();
    results.pageErrors = errors;
    return results;
  } finally {
    await browser.close();
    server.close();
  }
}

// ---------------------------------------------------------------- 3. report

const n0 = (x) => Math.round(x).toLocaleString("en-US").replace(/,/g, " ");
const us = (x) => (x >= 1000 ? `${(x / 1000).toFixed(2)} ms` : `${x.toFixed(1)} µs`);
const ms = (x) =>
  x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0)} ms`;

/** curve25519-dalek's opt-level in the wasm profile of Cargo.toml (what www/pkg was built with). */
function dalekOptLevel() {
  const toml = readFileSync(join(ROOT, "Cargo.toml"), "utf8");
  return /\[profile\.wasm\.package\.curve25519-dalek\][^[]*?opt-level\s*=\s*("?\w+"?)/.exec(toml)?.[1] ?? "?";
}

/** The TTP targets, judged on bench/ttp-load.mjs's figures. */
function ttpTargets(ttp) {
  if (!ttp) return [];
  const batch = ttp.scenarios.filter((s) => s.mode === "batch");
  const best = Math.max(...batch.map((s) => s.evaluationsPerSecond));
  const at64 = (mode) => ttp.scenarios.find((s) => s.mode === mode && s.clients === 64);
  const errors = ttp.scenarios.reduce((a, s) => a + s.errors, 0);
  const p99 = (s) =>
    s
      ? { value: ms(s.p99Ms), verdict: s.p99Ms < TARGETS.ttpP99Ms ? "MET" : "MISSED" }
      : { value: "?", verdict: "MISSED" };
  return [
    {
      name: `TTP ≥ ${n0(TARGETS.ttpEvaluationsPerSecond)} evaluations/s with batch requests (best of ${batch.map((s) => s.clients).join("/")} clients)`,
      value: `${n0(best)}/s`,
      verdict: best >= TARGETS.ttpEvaluationsPerSecond ? "MET" : "MISSED",
    },
    { name: `TTP p99 < ${TARGETS.ttpP99Ms} ms at 64 clients, single requests`, ...p99(at64("single")) },
    {
      name: `TTP p99 < ${TARGETS.ttpP99Ms} ms at 64 clients, batch requests of ${ttp.records}×${ttp.types.length}`,
      ...p99(at64("batch")),
    },
    { name: "TTP zero errors", value: String(errors), verdict: errors === 0 ? "MET" : "MISSED" },
    ...admissionTargets(ttp),
  ];
}

/** Issue 10's admission-control goals, on the mixed and overload scenarios. */
function admissionTargets(ttp) {
  const out = [];
  const m = ttp.mixed;
  if (m) {
    out.push({
      name: `TTP form p99 < 50 ms while ${m.bulkClients} bulk clients saturate it`,
      value: ms(m.form.p99Ms),
      verdict: m.form.p99Ms < 50 && m.form.errors === 0 ? "MET" : "MISSED",
    });
    out.push({
      name: `TTP bulk p99 ≤ 1.2× the FIFO ideal (${ms(m.bulk.fifoIdealMs)}) under the same load`,
      value: `${m.bulk.p99OverFifoIdeal.toFixed(2)}×`,
      verdict: m.bulk.p99OverFifoIdeal <= 1.2 ? "MET" : "MISSED",
    });
  }
  const o = ttp.overload;
  if (o) {
    const shed = o.statuses?.["503"] ?? 0;
    out.push({
      name: `TTP at ${o.clients} form clients: served or shed, none past 10 s`,
      value: `${o.ok} served, ${shed} shed, ${o.over10s} past 10 s, p99 ${ms(o.p99Ms)}`,
      verdict: o.over10s === 0 && o.errors === shed ? "MET" : "MISSED",
    });
  }
  return out;
}
const kb = (b) => `${(b / 1024).toFixed(1)} KB`;

function version(pkg) {
  try {
    return JSON.parse(readFileSync(join(ROOT, "node_modules", pkg, "package.json"), "utf8")).version;
  } catch {
    return "?";
  }
}

function analyse(size, b, ttp) {
  const t = Object.fromEntries(b.timings.map((x) => [x.id, x]));
  const pf = t["pf.gg.canonical"];
  const ratio = (id) => t[id].median / pf.median;
  const three = t["pf.three.raw"];
  const targets = [
    { name: `size: wasm + glue ≤ ${kb(BUDGET_GZIP)} gzip`, value: kb(size.core.gzip), verdict: size.verdict },
    {
      name: `blind ≤ ${TARGETS.blindMedianUs} µs median (prepare GG, raw values)`,
      value: us(t["pf.gg.raw"].median),
      verdict: t["pf.gg.raw"].median <= TARGETS.blindMedianUs ? "MET" : "MISSED",
    },
    {
      name: `blind ≤ ${TARGETS.blindMedianUs} µs median (prepare GG, canonical)`,
      value: us(pf.median),
      verdict: pf.median <= TARGETS.blindMedianUs ? "MET" : "MISSED",
    },
    {
      name: `≥ ${TARGETS.vsNoble}× faster than @noble/curves`,
      value: `${ratio("noble.blind").toFixed(2)}×`,
      verdict: ratio("noble.blind") >= TARGETS.vsNoble ? "MET" : "MISSED",
    },
    {
      name: `≥ ${TARGETS.vsLibpep}× faster than @nolai/libpep-wasm`,
      value: `${ratio("libpep.encrypt").toFixed(2)}×`,
      verdict: ratio("libpep.encrypt") >= TARGETS.vsLibpep ? "MET" : "MISSED",
    },
    ...ttpTargets(ttp),
  ];
  // Sanity: one operation timed two ways must agree.
  // (Only where single calls are the headline: a 5 µs operation cannot be
  // timed call by call with a 5 µs clock, which is why it is batched.)
  const agreement = b.timings
    .filter((x) => x.headline === "per-op")
    .map((x) => ({
      id: x.id,
      perOpMedian: x.perOp.median,
      batchMedian: x.batch.median,
      diff: x.perOp.median / x.batch.median - 1,
    }));
  const perRecordUs = 1e6 / b.throughput.mainThread.recordsPerSecond;
  const checks = {
    agreement,
    maxDisagreement: Math.max(...agreement.map((a) => Math.abs(a.diff))),
    threeVsMainThread: {
      preparePerRecordUs: three.batch.mean,
      mainThreadPerRecordUs: perRecordUs,
      diff: perRecordUs / three.batch.mean - 1,
    },
    speedup: b.throughput.parallel.recordsPerSecond / b.throughput.single.recordsPerSecond,
  };
  return { t, targets, checks, ratio };
}

function table(size, b, a, meta, ttp) {
  const { t, targets, checks, ratio } = a;
  const rows = [];
  const head = (title, cols) => rows.push({ head: title, cols });
  const row = (cells) => rows.push({ cells });

  head(PKG === join(ROOT, "www", "pkg") ? "SIZE (www/pkg)" : `SIZE (${PKG})`, [
    "raw",
    "gzip -9",
    "brotli -11",
    "",
    "",
    "",
  ]);
  row(["pseudoform_bg.wasm", n0(size.wasm.raw), n0(size.wasm.gzip), n0(size.wasm.brotli), "", "", ""]);
  row(["pseudoform.js (wasm-bindgen glue)", n0(size.glue.raw), n0(size.glue.gzip), n0(size.glue.brotli), "", "", ""]);
  row([
    "wasm + glue",
    n0(size.core.raw),
    n0(size.core.gzip),
    n0(size.core.brotli),
    "",
    `≤ ${n0(BUDGET_GZIP)} gz`,
    size.verdict,
  ]);
  row([
    `JS layer (${size.layerFiles.length} files, each compressed)`,
    n0(size.layer.raw),
    n0(size.layer.gzip),
    n0(size.layer.brotli),
    "",
    "",
    "",
  ]);
  row(["everything", n0(size.all.raw), n0(size.all.gzip), n0(size.all.brotli), "", "", ""]);
  if (size.bundle)
    row([
      "one-tag bundle pseudoform-auto.js (+ wasm)",
      n0(size.bundle.raw),
      n0(size.bundle.gzip),
      n0(size.bundle.brotli),
      "",
      "",
      "",
    ]);
  row([
    "peer: libpep-wasm pkg-web wasm + js",
    n0(size.libpep.raw),
    n0(size.libpep.gzip),
    n0(size.libpep.brotli),
    "",
    "",
    "",
  ]);

  head("ONE BLIND (Chromium, main thread)", ["median", "p95", "batch mean", "fastest", "peer / pf", "target"]);
  const op = (id, name, extra = "", target = "") => {
    const x = t[id];
    row([name, us(x.median), us(x.p95), `${us(x.batch.mean)} k=${x.k}`, us(x.batch.min), extra, target]);
  };
  op("pf.gg.raw", "pseudoform prepare GG, raw values", "", `≤ ${TARGETS.blindMedianUs} µs ${targets[1].verdict}`);
  op(
    "pf.gg.canonical",
    "pseudoform prepare GG, canonical",
    "1.00×",
    `≤ ${TARGETS.blindMedianUs} µs ${targets[2].verdict}`,
  );
  op("pf.gg.input", "  of which normalisation (pseudonymInput)");
  op(
    "noble.blind",
    `@noble/curves ${version("@noble/curves")} oprf.blind`,
    `${ratio("noble.blind").toFixed(2)}×`,
    `≥ ${TARGETS.vsNoble}× ${targets[3].verdict}`,
  );
  op(
    "libpep.encrypt",
    `libpep-wasm ${version("@nolai/libpep-wasm")} fromHash+encrypt`,
    `${ratio("libpep.encrypt").toFixed(2)}×`,
    `≥ ${TARGETS.vsLibpep}× ${targets[4].verdict}`,
  );
  op("pf.three.raw", "pseudoform prepare NGGV+RGG+MRN, raw", `${us(t["pf.three.raw"].median / 3)}/type`);

  if (size.variants.length) {
    head("PER-CRATE OPT-LEVEL (prepare GG canonical)", [
      "wasm+glue gz",
      "median",
      "p95",
      "batch mean",
      "fastest",
      "time / pf",
    ]);
    const pf = t["pf.gg.canonical"];
    row([
      `curve25519-dalek opt-level ${dalekOptLevel()} (www/pkg)`,
      n0(size.core.gzip),
      us(pf.median),
      us(pf.p95),
      `${us(pf.batch.mean)} k=${pf.k}`,
      us(pf.batch.min),
      "1.00×",
    ]);
    size.variants.forEach((v, i) => {
      const x = t[`variant.${i}`];
      row([
        v.label,
        n0(v.gzip),
        us(x.median),
        us(x.p95),
        `${us(x.batch.mean)} k=${x.k}`,
        us(x.batch.min),
        `${(x.median / pf.median).toFixed(2)}×`,
      ]);
    });
  }

  const tp = b.throughput;
  head(`THROUGHPUT NGGV+RGG+MRN, ${n0(tp.records)} rec.`, ["records/s", "types/s", "speed-up", "", "", ""]);
  row(["main thread", n0(tp.mainThread.recordsPerSecond), n0(3 * tp.mainThread.recordsPerSecond), "", "", "", ""]);
  row(["1 Web Worker", n0(tp.single.recordsPerSecond), n0(3 * tp.single.recordsPerSecond), "1.00×", "", "", ""]);
  row([
    `${tp.workers} Web Workers (hardwareConcurrency)`,
    n0(tp.parallel.recordsPerSecond),
    n0(3 * tp.parallel.recordsPerSecond),
    `${checks.speedup.toFixed(2)}×`,
    "",
    "",
    "",
  ]);

  if (ttp) {
    head(`TTP ON LOOPBACK (${ttp.seconds} s each)`, ["evals/s", "requests/s", "p50", "p99", "errors", "target"]);
    for (const s of ttp.scenarios) {
      const clients = `${s.clients} client${s.clients === 1 ? "" : "s"}`;
      const name =
        s.mode === "single"
          ? `single /oprf/eval, ${clients}`
          : `batch /v1/evaluate ${s.records}×${s.types.length}, ${clients}`;
      const goals = [];
      if (s.mode === "batch")
        goals.push(`≥ 10k/s ${s.evaluationsPerSecond >= TARGETS.ttpEvaluationsPerSecond ? "MET" : "MISSED"}`);
      if (s.clients === 64) goals.push(`p99 ${s.p99Ms < TARGETS.ttpP99Ms ? "MET" : "MISSED"}`);
      row([
        name,
        n0(s.evaluationsPerSecond),
        n0(s.requestsPerSecond),
        ms(s.p50Ms),
        ms(s.p99Ms),
        String(s.errors),
        goals.join(", "),
      ]);
    }
  }

  const widths = [0, 0, 0, 0, 0, 0, 0];
  for (const r of rows)
    (r.cells ?? [r.head, ...r.cols]).forEach((c, i) => {
      widths[i] = Math.max(widths[i], c.length);
    });
  const line = (cells) =>
    `│ ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(" │ ")} │`;
  const rule = (l, m, r) => `${l}${widths.map((w) => "─".repeat(w + 2)).join(m)}${r}`;
  const out = [];
  out.push(`pseudoform benchmark ${meta.date}${QUICK ? " (--quick: smoke run, few iterations)" : ""}`);
  out.push(
    `${meta.browser}; ${meta.cores} cores (hardwareConcurrency ${b.hardwareConcurrency}); node ${process.version}; ` +
      `other processes took ${b.othersCores === null ? "?" : b.othersCores.toFixed(2)} of the ${meta.cores} cores during the run ` +
      `(load average ${meta.load.before.toFixed(2)} → ${meta.load.after.toFixed(2)})`,
  );
  out.push(
    `crossOriginIsolated ${b.crossOriginIsolated}; performance.now() resolution ${b.timerResolutionUs.toFixed(1)} µs; ` +
      `median/p95 from ${t["pf.gg.raw"].headline === "per-op" ? "single-call samples" : "batch means"} (batch means for operations under ${(20 * b.timerResolutionUs).toFixed(0)} µs), ` +
      "batch mean = mean over batches of k calls ÷ k, fastest = fastest batch",
  );
  out.push(rule("┌", "┬", "┐"));
  rows.forEach((r, i) => {
    if (r.head) {
      if (i > 0) out.push(rule("├", "┼", "┤"));
      out.push(line([r.head, ...r.cols]));
      out.push(rule("├", "┼", "┤"));
    } else {
      out.push(line(r.cells));
    }
  });
  out.push(rule("└", "┴", "┘"));
  if (ttp) {
    const cores = (x) => (x === null || x === undefined ? "?" : x.toFixed(2));
    out.push(
      `ttp: ${ttp.server} on ${new URL(ttp.loopback).hostname}, caller's rate limit ${n0(ttp.rateLimitPerMinute)}/min; ` +
        `load generator bench/ttp-load (1 thread, one keep-alive connection per client, HDR histogram) on the same ${ttp.cores} cores: ` +
        `the TTP took ${cores(ttp.cpu.ttpCores)} cores and the generator ${cores(ttp.cpu.loadGeneratorCores)} over the runs (${ttp.date})`,
    );
  }
  out.push(`targets: ${targets.map((x) => `${x.name}: ${x.value} ${x.verdict}`).join("; ")}`);
  out.push(
    `checks: pseudoform blindedInput = r·HashToGroup(x) by @noble/curves: ${b.equivalent ? "yes" : "NO"}; ` +
      `single-call median vs batch median: ${checks.agreement.map((x) => `${x.id} ${x.diff >= 0 ? "+" : ""}${(100 * x.diff).toFixed(1)} %`).join(", ")}; ` +
      `main-thread loop ${us(checks.threeVsMainThread.mainThreadPerRecordUs)}/record vs prepare NGGV+RGG+MRN batch mean ${us(checks.threeVsMainThread.preparePerRecordUs)}`,
  );
  return out.join("\n");
}

/** Horizontal bar chart of the medians (p95 as a whisker), linear scale. */
function svg(b, a, meta) {
  const bars = [
    ["pf.gg.raw", "pseudoform · prepare GG, raw form values", "#1f6f50"],
    ["pf.gg.canonical", "pseudoform · prepare GG, canonical values", "#2e9e73"],
    ["noble.blind", `@noble/curves ${version("@noble/curves")} · oprf.blind`, "#b0603a"],
    ["libpep.encrypt", `@nolai/libpep-wasm ${version("@nolai/libpep-wasm")} · Pseudonym.fromHash + encrypt`, "#6a5aa8"],
  ].map(([id, label, color]) => ({ ...a.t[id], label, color }));
  const left = 16 + 7.2 * Math.max(...bars.map((x) => x.label.length)),
    right = 130,
    top = 62,
    barH = 26,
    gap = 16;
  const W = Math.round(left + 440 + right);
  const H = top + bars.length * (barH + gap) + 52;
  const max = Math.max(...bars.map((x) => x.p95), TARGETS.blindMedianUs) * 1.05;
  const step = [10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000].find((s) => max / s <= 8) ?? 10000;
  const x = (v) => left + (v / max) * (W - left - right);
  const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const parts = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="13">`,
  );
  parts.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  parts.push(
    `<text x="16" y="22" font-size="15" font-weight="600">Blinding one pseudonym in the browser (median, lower is better)</text>`,
  );
  parts.push(
    `<text x="16" y="42" fill="#555" font-size="11">${esc(meta.browser)}, ${meta.cores} cores, ${meta.date.slice(0, 10)}; whisker = p95</text>`,
  );
  for (let v = 0; v <= max; v += step) {
    parts.push(
      `<line x1="${x(v).toFixed(1)}" y1="${top - 6}" x2="${x(v).toFixed(1)}" y2="${H - 40}" stroke="#e4e4e4"/>`,
    );
    parts.push(
      `<text x="${x(v).toFixed(1)}" y="${H - 26}" text-anchor="middle" fill="#555" font-size="11">${v >= 1000 ? `${v / 1000} ms` : `${v} µs`}</text>`,
    );
  }
  parts.push(
    `<line x1="${x(TARGETS.blindMedianUs).toFixed(1)}" y1="${top - 10}" x2="${x(TARGETS.blindMedianUs).toFixed(1)}" y2="${H - 40}" stroke="#c33" stroke-dasharray="4 3"/>`,
  );
  parts.push(
    `<text x="${(x(TARGETS.blindMedianUs) + 4).toFixed(1)}" y="${H - 44}" fill="#c33" font-size="11">target ${TARGETS.blindMedianUs} µs</text>`,
  );
  bars.forEach((bar, i) => {
    const y = top + i * (barH + gap);
    const ratio = bar.id.startsWith("pf.") ? "" : ` (${a.ratio(bar.id).toFixed(1)}×)`;
    parts.push(`<text x="${left - 8}" y="${y + barH / 2 + 4}" text-anchor="end">${esc(bar.label)}</text>`);
    parts.push(
      `<rect x="${left}" y="${y}" width="${(x(bar.median) - left).toFixed(1)}" height="${barH}" fill="${bar.color}"/>`,
    );
    parts.push(
      `<line x1="${x(bar.median).toFixed(1)}" y1="${y + barH / 2}" x2="${x(bar.p95).toFixed(1)}" y2="${y + barH / 2}" stroke="#333"/>`,
    );
    parts.push(
      `<line x1="${x(bar.p95).toFixed(1)}" y1="${y + 6}" x2="${x(bar.p95).toFixed(1)}" y2="${y + barH - 6}" stroke="#333"/>`,
    );
    parts.push(
      `<text x="${(x(bar.p95) + 6).toFixed(1)}" y="${y + barH / 2 + 4}">${esc(us(bar.median))}${ratio}</text>`,
    );
  });
  parts.push(
    `<text x="16" y="${H - 8}" fill="#555" font-size="11">same 32-byte input; ratio = peer median / pseudoform canonical median; bench/run.mjs</text>`,
  );
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}

/** --wait-quiet SECONDS: waits (at most that long) until other processes leave the cores alone. */
async function waitQuiet(limitSeconds) {
  const end = Date.now() + limitSeconds * 1000;
  for (;;) {
    const a = cpuSnapshot();
    await new Promise((r) => setTimeout(r, 2000));
    const others = othersCores(a, cpuSnapshot());
    if (others === null || others < 0.1) return others;
    if (Date.now() >= end) {
      log(
        `bench: still ${others.toFixed(2)} cores busy with other processes after ${limitSeconds} s; measuring anyway`,
      );
      return others;
    }
    log(`bench: other processes use ${others.toFixed(2)} cores; waiting for a quiet moment`);
  }
}

// ---------------------------------------------------------------- main

ensureBuilt();
if (argv.includes("--wait-quiet")) await waitQuiet(Number(argv[argv.indexOf("--wait-quiet") + 1]) || 300);
const size = sizes();
log(`bench: size wasm+glue gzip ${size.core.gzip} B (${size.verdict}); starting Chromium${QUICK ? " (quick)" : ""}`);
const started = Date.now();
const loadBefore = loadavg()[0];
const b = await browserBench();
const loadAfter = loadavg()[0];
const meta = {
  date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  browser: `Chromium ${b.browserVersion}`,
  cores: cpus().length,
  quick: QUICK,
  load: { before: loadBefore, after: loadAfter },
  seconds: Math.round((Date.now() - started) / 1000),
  packages: {
    "@noble/curves": version("@noble/curves"),
    "@nolai/libpep-wasm": version("@nolai/libpep-wasm"),
    "playwright-core": version("playwright-core"),
  },
  commit: spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).stdout.trim() || null,
};
const ttp = TTP_FILE ? JSON.parse(readFileSync(TTP_FILE, "utf8")) : null;
const analysis = analyse(size, b, ttp);
const text = table(size, b, analysis, meta, ttp);
process.stdout.write(`${text}\n`);
if (b.pageErrors.length) log(`bench: page errors: ${b.pageErrors.join(" | ")}`);

mkdirSync(OUT, { recursive: true });
writeFileSync(join(OUT, "latest.txt"), `${text}\n`);
writeFileSync(
  join(OUT, "latest.json"),
  `${JSON.stringify({ meta, config: CONFIG, size, browser: b, ttp, targets: analysis.targets, checks: analysis.checks }, null, 2)}\n`,
);
writeFileSync(join(OUT, "browser.svg"), svg(b, analysis, meta));
log(`bench: wrote ${join(OUT, "latest.txt")}, latest.json, browser.svg (${meta.seconds} s in the browser)`);
process.exit(0);
