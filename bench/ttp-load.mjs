#!/usr/bin/env node
// Load benchmark of the TTP on loopback:
//
//   node bench/ttp-load.mjs [--quick] [--seconds S] [--out FILE]
//
// Starts the TTP of pseudoform-demo (target/release/pseudoform-demo: the
// reference TTP, pseudoform_ttp::serve, with generated development keys, in
// a fresh temporary folder, on 127.0.0.1 with free ports) with the caller's
// rate limit set out of the way, and drives it with bench/ttp-load (a Rust
// load generator: real blinded elements, keep-alive HTTP/1.1, latencies in
// an HDR histogram): single requests (POST /oprf/eval, one element with its
// pseudonymType) and batch requests (POST /v1/evaluate, 100 records of
// NGGV+RGG+MRN = 300 evaluations) at 1, 16 and 64 concurrent clients, each
// for S seconds (default 10) after a 1 s warm-up. Then the mixed load of
// issue 10: 64 bulk clients (batches as above) saturating the TTP while 4
// form clients send one record of the three types each (the form's
// request, taken ahead of bulk work): the form's p99 and the bulk p99
// against the first-in-first-out ideal; and 256 form clients at once: each
// request served or shed (503 + Retry-After), none past the form's 10 s. The TTP and the load
// generator share this machine's cores; the CPU each took is measured from
// /proc and reported. Writes the figures as JSON (default
// bench/results/ttp.json; --quick: 2 s each, to a temporary folder) for
// bench/run.mjs --ttp FILE, which puts them in its table; prints them too.
// Benchmarks report: exits 0 unless the benchmark itself could not run.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const argv = process.argv.slice(2);
const arg = (name) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
const QUICK = argv.includes("--quick");
const SECONDS = Number(arg("--seconds") ?? (QUICK ? 2 : 10));
const OUT = resolve(
  arg("--out") ?? (QUICK ? join(tmpdir(), "pseudoform-bench", "ttp.json") : join(ROOT, "bench", "results", "ttp.json")),
);
const DEMO = join(ROOT, "target", "release", "pseudoform-demo");
const LOAD_TARGET = join(ROOT, "target", "bench-load");
const LOAD = join(LOAD_TARGET, "release", "pseudoform-ttp-load");
const CLIENTS = [1, 16, 64];
const RECORDS = 100;
/** Bulk clients of the mixed scenario; clients of the overload scenario. */
const MIXED_BULK = 64;
const OVERLOAD = 256;
const TYPES = ["NGGV", "RGG", "MRN"];
/** Evaluations per minute for the demo's caller: far above what 2 cores can do. */
const RATE_LIMIT = 1_000_000_000;

const log = (s) => process.stderr.write(`${s}\n`);

function run(cmd, args, cwd = ROOT) {
  const r = spawnSync(cmd, args, { cwd, stdio: ["ignore", process.stderr, process.stderr] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed`);
}

/** The TTP (demo) and the load generator, built if missing. */
function ensureBuilt() {
  if (!existsSync(DEMO)) {
    log("ttp-load: building pseudoform-demo (release)");
    run("cargo", ["build", "--release", "--quiet", "-p", "pseudoform-demo"]);
  }
  log("ttp-load: building the load generator (bench/ttp-load)");
  run("cargo", ["build", "--release", "--quiet", "--target-dir", LOAD_TARGET], join(ROOT, "bench", "ttp-load"));
}

/** CPU seconds (user + system) of a process and its threads, from /proc. */
function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(rest[11]) + Number(rest[12])) / 100; // USER_HZ = 100 on Linux
  } catch {
    return null;
  }
}

/** Starts the demo chain; resolves with its JSON description once it listens. */
function startDemo(dir) {
  const child = spawn(
    DEMO,
    [
      "--dir",
      dir,
      "--www",
      join(ROOT, "www"),
      "--ttp-port",
      "0",
      "--registry-port",
      "0",
      "--second-registry-port",
      "0",
      "--portal-port",
      "0",
      // The load generator authenticates with a static token: a development TTP.
      "--development-static-token",
      "--rate-limit",
      String(RATE_LIMIT),
      "--json",
    ],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  return new Promise((resolveStart, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`pseudoform-demo did not start in 60 s: ${stderr}`)), 60_000);
    child.stdout.on("data", (d) => {
      out += d;
      const line = out.split("\n").find((l) => l.trim().startsWith("{"));
      if (line) {
        clearTimeout(timer);
        resolveStart({ child, info: JSON.parse(line) });
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`pseudoform-demo exited (${code}): ${stderr}`));
    });
  });
}

async function main() {
  ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), "pseudoform-ttp-load-"));
  log(`ttp-load: starting the TTP (pseudoform-demo, development keys in ${dir})`);
  const { child, info } = await startDemo(dir);
  try {
    const args = [
      "--url",
      info.ttp,
      "--token-file",
      join(dir, "provider-token"),
      "--organization",
      info.recipientA.organization,
      "--scope",
      info.recipientA.scope,
      "--seconds",
      String(SECONDS),
      "--warmup",
      "1",
      "--clients",
      CLIENTS.join(","),
      "--modes",
      "single,batch",
      "--records",
      String(RECORDS),
      "--types",
      TYPES.join(","),
      "--mixed",
      String(MIXED_BULK),
      "--overload",
      String(OVERLOAD),
    ];
    log(`ttp-load: ${CLIENTS.length * 2} scenarios of ${SECONDS} s (+1 s warm-up) against ${info.ttp}`);
    const ttpBefore = cpuSeconds(child.pid);
    const started = Date.now();
    const gen = spawn(LOAD, args, { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    gen.stdout.on("data", (d) => {
      out += d;
      for (const line of String(d)
        .split("\n")
        .filter((l) => l.startsWith("{"))) {
        const r = JSON.parse(line);
        if (r.mode === "mixed")
          log(
            `ttp-load: mixed ${r.bulkClients} bulk + ${r.formClients} form clients: form p50 ${r.form.p50Ms} ms, p99 ${r.form.p99Ms} ms; bulk p99 ${r.bulk.p99Ms} ms = ${r.bulk.p99OverFifoIdeal.toFixed(2)}× the FIFO ideal ${Math.round(r.bulk.fifoIdealMs)} ms`,
          );
        else
          log(
            `ttp-load: ${r.mode} ${r.clients} clients: ${Math.round(r.evaluationsPerSecond)} evaluations/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, ${r.errors} errors ${JSON.stringify(r.statuses)}${r.mode === "overload" ? `, ${r.over10s} past 10 s` : ""}`,
          );
      }
    });
    let genCpu = null;
    const code = await new Promise((res) => {
      const poll = setInterval(() => {
        genCpu = cpuSeconds(gen.pid) ?? genCpu;
      }, 200);
      gen.on("exit", (c) => {
        clearInterval(poll);
        res(c);
      });
    });
    if (code !== 0) throw new Error(`the load generator exited with ${code}`);
    const wall = (Date.now() - started) / 1000;
    const ttpCpu = ttpBefore === null ? null : cpuSeconds(child.pid) - ttpBefore;
    const all = out
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l));
    const scenarios = all.filter((s) => s.mode === "single" || s.mode === "batch");
    const mixed = all.find((s) => s.mode === "mixed") ?? null;
    const overload = all.find((s) => s.mode === "overload") ?? null;
    const result = {
      date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      cores: cpus().length,
      server:
        "pseudoform-demo's TTP (pseudoform_ttp::serve), release build, development keys, SQLite audit log in a temporary folder",
      loopback: info.ttp,
      rateLimitPerMinute: RATE_LIMIT,
      seconds: SECONDS,
      warmupSeconds: 1,
      records: RECORDS,
      types: TYPES,
      cpu: {
        wallSeconds: wall,
        ttpCores: ttpCpu === null ? null : ttpCpu / wall,
        loadGeneratorCores: genCpu === null ? null : genCpu / wall,
      },
      scenarios,
      mixed,
      overload,
    };
    mkdirSync(dirname(OUT), { recursive: true });
    writeFileSync(OUT, `${JSON.stringify(result, null, 2)}\n`);
    log(
      `ttp-load: the TTP took ${result.cpu.ttpCores?.toFixed(2) ?? "?"} cores and the load generator ${result.cpu.loadGeneratorCores?.toFixed(2) ?? "?"} of the ${result.cores}; wrote ${OUT}`,
    );
  } finally {
    child.kill("SIGTERM");
    await new Promise((res) => {
      if (child.exitCode !== null) res();
      else child.on("exit", res);
      setTimeout(res, 10_000);
    });
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
