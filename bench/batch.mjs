#!/usr/bin/env node
// The native batch command, `pseudoform batch` (docs/processors.md):
//
//   node bench/batch.mjs [--rows N] [--out FILE]
//
//  1. local work on 2 threads, no network (crates/cli/examples/local_work.rs):
//     read + validate, blind NGGV+RGG+MRN, seal to a 3072-bit registry key;
//  2. end to end against the demo chain on loopback (release binaries): the
//     command with --output only (TTP round trips), and with --deliver (TTP
//     and registry A, which decrypts and de-blinds every record);
//  3. prints one table and writes the raw figures as JSON.
//
// Benchmarks report; they do not fail. The extract is synthetic: N rows of
// made-up identities, every 10th objecting.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, createWriteStream } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { tmpdir, cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const { values } = parseArgs({
  options: { rows: { type: "string", default: "100000" }, out: { type: "string" } },
});
const ROWS = Number(values.rows);
const dir = mkdtempSync(join(tmpdir(), "pseudoform-batch-bench-"));

const SYLLABLES = ["ba", "de", "ki", "lo", "mu", "ne", "ri", "so"];
/** A synthetic extract of `n` rows. @param {string} path @param {number} n */
async function synthetic(path, n) {
  const out = createWriteStream(path);
  const write = (/** @type {string} */ line) =>
    new Promise((resolve) => (out.write(line) ? resolve(undefined) : out.once("drain", resolve)));
  await write("naam;letter;geboren;geslacht;postcode;nummer;patientnummer;opmerking;bezwaar\n");
  for (let i = 0; i < n; i++) {
    const name = [0, 1, 2].map((k) => SYLLABLES[(i >> (3 * k)) % 8]).join("");
    const day = String(1 + (i % 28)).padStart(2, "0");
    const month = String(1 + (Math.floor(i / 28) % 12)).padStart(2, "0");
    const line = [
      name,
      String.fromCharCode(65 + (i % 26)),
      `${day}-${month}-${1930 + (i % 80)}`,
      i % 2 ? "V" : "M",
      `${1000 + (i % 9000)} ${["AB", "CD", "EF", "GH"][i % 4]}`,
      1 + (i % 200),
      100000 + i,
      `rij ${i}`,
      i % 10 === 9 ? "ja" : "nee",
    ].join(";");
    await write(`${line}\n`);
  }
  await new Promise((resolve) => out.end(resolve));
}

const MAPPING = `opt_out = "bezwaar"
[identity]
birthName = "naam"
initial = "letter"
birthDate = "geboren"
sex = "geslacht"
postcode = "postcode"
houseNumber = "nummer"
mrn = "patientnummer"
[data]
opmerking = "opmerking"
`;

/** Runs a command to its end; its stdout, or throws with its stderr. */
function run(/** @type {string} */ command, /** @type {string[]} */ args) {
  const result = spawnSync(command, args, { cwd: ROOT, encoding: "utf8", maxBuffer: 64 << 20 });
  if (result.status !== 0 && result.status !== 1) {
    throw new Error(`${command} ${args.join(" ")}: exit ${result.status}\n${result.stderr}`);
  }
  return result.stdout;
}

async function startDemo() {
  const demoDir = join(dir, "demo");
  const args = ["--dir", demoDir, "--www", join(ROOT, "www"), "--json", "--rate-limit", "100000000"];
  for (const port of [
    "--ttp-port",
    "--registry-port",
    "--framed-registry-port",
    "--second-registry-port",
    "--portal-port",
    "--frame-port",
  ]) {
    args.push(port, "0");
  }
  const child = spawn(join(ROOT, "target/release/pseudoform-demo"), args, {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "inherit"],
  });
  let line = "";
  for await (const chunk of child.stdout) {
    line += chunk;
    if (line.includes("\n")) break;
  }
  return { child, urls: JSON.parse(line.split("\n")[0]) };
}

const extract = join(dir, "extract.csv");
const mapping = join(dir, "mapping.toml");
writeFileSync(mapping, MAPPING);
await synthetic(extract, ROWS);

console.error(`bench: local work on ${ROWS} rows, 2 threads`);
const local = JSON.parse(run(join(ROOT, "target/release/examples/local_work"), [extract, mapping, "2"]));

console.error("bench: end to end against the demo chain");
const { child, urls } = await startDemo();
const batch = join(ROOT, "target/release/pseudoform");
const common = [
  "batch",
  extract,
  "--mapping",
  mapping,
  "--connection",
  urls.processorConnection,
  "--quiet",
  "--types",
  "NGGV,RGG,MRN",
];
/** @type {Record<string, any>} */
const e2e = {};
try {
  e2e.output = JSON.parse(
    run(batch, [...common, "--output", join(dir, "out.csv"), "--checkpoint", join(dir, "c1.json")]),
  );
  e2e.deliver = JSON.parse(run(batch, [...common, "--deliver", "--checkpoint", join(dir, "c2.json")]));
} finally {
  child.kill("SIGTERM");
}

const f = (/** @type {number} */ n) => Math.round(n).toLocaleString("en-US").replaceAll(",", " ");
const mib = (/** @type {number} */ b) => (b / 1048576).toFixed(0);
const table = [
  `pseudoform batch, ${ROWS} rows × NGGV+RGG+MRN, ${cpus().length} cores`,
  "| stage | rows/s | seconds | note |",
  "|---|---|---|---|",
  `| read + validate (1 thread) | ${f(local.readValidateRowsPerSecond)} | ${local.readValidateSeconds.toFixed(2)} | |`,
  `| blind (2 threads) | ${f(local.blindRowsPerSecond)} | ${local.blindSeconds.toFixed(2)} | |`,
  `| blind + seal to RSA-3072 (2 threads) | ${f(local.blindSealRowsPerSecond)} | ${local.blindSealSeconds.toFixed(2)} | |`,
  `| local work, all stages in sequence | ${f(local.localRowsPerSecond)} | | goal ≥ 10 000 |`,
  `| end to end, --output (TTP on loopback) | ${f(e2e.output.rowsPerSecond)} | ${e2e.output.seconds.toFixed(1)} | peak RSS ${mib(e2e.output.peakRssBytes)} MiB |`,
  `| end to end, --deliver (TTP + registry A) | ${f(e2e.deliver.rowsPerSecond)} | ${e2e.deliver.seconds.toFixed(1)} | stored ${e2e.deliver.stored}, peak RSS ${mib(e2e.deliver.peakRssBytes)} MiB |`,
].join("\n");
console.log(table);
if (values.out) {
  await mkdir(dirname(values.out), { recursive: true });
  await writeFile(values.out, JSON.stringify({ rows: ROWS, local, e2e, table }, null, 2));
}
rmSync(dir, { recursive: true, force: true });
