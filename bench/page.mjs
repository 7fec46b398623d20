// The browser half of bench/run.mjs: every measurement runs here, in one page
// of one headless Chromium, and the results go back to Node as plain JSON.
//
// Timing: performance.now() around each call (per-op samples: median, p95)
// and around batches of k calls divided by k (batch means), interleaved in
// rounds over all operations so that drift hits every operation alike. The
// page is cross-origin isolated (COOP/COEP), which gives performance.now()
// its fine resolution; the resolution is measured and reported, and when it
// is too coarse for an operation the batch figures become the headline.
import { prepare, pseudonymInput, ready } from "/www/pkg/index.js";
import { ristretto255_hasher, ristretto255_oprf } from "@noble/curves/ed25519.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256, sha512 } from "@noble/hashes/sha2.js";
import initPep, * as pep from "/node_modules/@nolai/libpep-wasm/pkg-web/libpep.js";

const RECIPIENT = { recipientOrganization: "oin:00000001234567890000", recipientScope: "nkr" };
const PROVIDER = "ura:00000001";
const GG = { ...RECIPIENT, types: ["GG"] };
const THREE = { ...RECIPIENT, types: ["NGGV", "RGG", "MRN"] };
/** The form values of the issue, as a clinician types them. */
const FORM = {
  birthName: "van der Berg-Jansen",
  birthDate: "1-2-1980",
  sex: "vrouw",
  initial: "J.P.",
  postcode: "1234 ab",
  mrn: "PAT-0001",
  provider: PROVIDER,
};
const GG_RAW = { birthDate: FORM.birthDate, sex: FORM.sex };
/** The same GG identity already in canonical form: normalisation is a no-op pass. */
const GG_CANONICAL = { birthDate: "19800201", sex: "2" };
const H2G_DST = new TextEncoder().encode("HashToGroup-OPRFV1-\x00-ristretto255-SHA512");

const now = () => performance.now();
const status = (text) => {
  document.getElementById("status").textContent = text;
  console.log(`bench: ${text}`);
};

/** Smallest positive step of performance.now(), in µs. */
function timerResolutionUs() {
  let min = Infinity;
  let last = now();
  const end = last + 100;
  for (let steps = 0; steps < 5000 && last < end;) {
    const t = now();
    if (t !== last) {
      min = Math.min(min, t - last);
      last = t;
      steps++;
    }
  }
  return min * 1000;
}

const b64url = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const leToBigInt = (bytes) => bytes.reduceRight((n, b) => (n << 8n) | BigInt(b), 0n);

/**
 * The 32-byte input pseudoform blinds for GG: HKDF-SHA256 (no salt) of the
 * RFC 8785 identifier with info "{organization}|{scope}|v1" — computed here
 * independently so the peers get exactly the same bytes.
 */
function ggInput() {
  const value = pseudonymInput("GG", GG_CANONICAL);
  const identifier = JSON.stringify({ landCode: "NL", type: "GG", value });
  const info = `${RECIPIENT.recipientOrganization}|${RECIPIENT.recipientScope}|v1`;
  const enc = new TextEncoder();
  return { value, x: hkdf(sha256, enc.encode(identifier), undefined, enc.encode(info), 32) };
}

/**
 * Equivalence check: pseudoform's blindedInput must equal r·HashToGroup(x)
 * recomputed with @noble/curves from the same x and pseudoform's own blind
 * factor r — so the operations compared below really are the same blind.
 */
function equivalenceCheck(x) {
  const { prepared } = prepare(GG_CANONICAL, GG);
  const r = leToBigInt(b64url(prepared[0].blindFactor));
  const expected = ristretto255_hasher.hashToCurve(x, { DST: H2G_DST }).multiply(r).toBytes();
  return hex(expected) === hex(b64url(prepared[0].blindedInput));
}

/** Deterministic, varied, valid form records for the throughput runs. */
function makeRecords(n) {
  const names = [
    "van der Berg-Jansen",
    "de Vries",
    "Jansen",
    "Bakker",
    "El Amrani",
    "Öztürk",
    "van den Heuvel",
    "Smit",
    "de Jong-Visser",
    "Meijer",
  ];
  const letters = ["AB", "CD", "EF", "GH", "JK", "LM", "NP", "RT", "VW", "XZ"];
  const records = [];
  for (let i = 0; i < n; i++) {
    records.push({
      birthName: names[i % names.length],
      birthDate: `${1 + (i % 28)}-${1 + ((i >> 3) % 12)}-${1930 + (i % 90)}`,
      sex: i % 2 ? "man" : "vrouw",
      initial: `${String.fromCharCode(65 + (i % 26))}.`,
      postcode: `${1000 + ((i * 37) % 9000)} ${letters[i % letters.length].toLowerCase()}`,
      mrn: `PAT-${String(i).padStart(6, "0")}`,
      provider: PROVIDER,
    });
  }
  return records;
}

function stats(values) {
  const s = [...values].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
  return {
    n: s.length,
    median: q(0.5),
    p95: q(0.95),
    min: s[0],
    max: s[s.length - 1],
    mean: s.reduce((a, b) => a + b, 0) / s.length,
  };
}

let sink = 0;

/** Measures every operation, interleaved in rounds; times in µs. */
function measureAll(ops, cfg, resolutionUs) {
  const plans = ops.map((op) => {
    // Warm-up (also lets V8 tier the wasm and the JS up) and a first estimate.
    let calls = 0;
    const t0 = now();
    while (now() - t0 < cfg.warmupMs || calls < cfg.minWarmupCalls) {
      sink += op.fn();
      calls++;
    }
    const estimateMs = (now() - t0) / calls;
    const perOp = Math.max(cfg.minSamples, Math.min(cfg.maxSamples, Math.round(cfg.budgetMs / 2 / estimateMs)));
    const k = Math.max(1, Math.ceil(cfg.batchMs / estimateMs));
    const batches = Math.max(cfg.minBatches, Math.min(cfg.maxBatches, Math.round(cfg.budgetMs / 2 / (k * estimateMs))));
    status(`warm ${op.id}: ~${(estimateMs * 1000).toFixed(1)} µs, ${perOp} samples + ${batches}×${k} batched`);
    return { op, perOp, k, batches, samples: [], batchMeans: [], warmupCalls: calls };
  });
  for (let round = 0; round < cfg.rounds; round++) {
    status(`round ${round + 1}/${cfg.rounds}`);
    for (const plan of plans) {
      const { fn } = plan.op;
      // Single calls and batches evenly interleaved, so both ways of timing
      // see the same moments of the run (and the same interference).
      const nSamples = Math.ceil(plan.perOp / cfg.rounds);
      const nBatches = Math.ceil(plan.batches / cfg.rounds);
      for (let i = 0, b = 0; i < nSamples || b < nBatches;) {
        if (b < nBatches && (i >= nSamples || b * nSamples <= i * nBatches)) {
          const t0 = now();
          for (let j = 0; j < plan.k; j++) sink += fn();
          plan.batchMeans.push(((now() - t0) * 1000) / plan.k);
          b++;
        } else {
          const t0 = now();
          sink += fn();
          plan.samples.push((now() - t0) * 1000);
          i++;
        }
      }
    }
  }
  return plans.map((plan) => {
    const perOp = stats(plan.samples);
    const batch = stats(plan.batchMeans);
    // Per-op samples are the headline when the clock is fine enough for them
    // (resolution at most 5 % of the operation), else the batch means are.
    const headline = resolutionUs <= 0.05 * batch.median ? "per-op" : "batch";
    const main = headline === "per-op" ? perOp : batch;
    return {
      id: plan.op.id,
      label: plan.op.label,
      peer: plan.op.peer ?? null,
      blinds: plan.op.blinds ?? 1,
      headline,
      median: main.median,
      p95: main.p95,
      perOp,
      batch,
      k: plan.k,
      warmupCalls: plan.warmupCalls,
    };
  });
}

/** Records per second of prepare(NGGV+RGG+MRN) in 1 and in n Web Workers. */
async function throughput(cfg) {
  const records = makeRecords(cfg.records);
  const n = navigator.hardwareConcurrency || 1;
  const workers = Array.from({ length: n }, () => new Worker("./worker.mjs", { type: "module" }));
  const reply = (w) =>
    new Promise((resolve, reject) => {
      w.onmessage = ({ data }) => resolve(data);
      w.onerror = (e) => reject(new Error(`worker: ${e.message}`));
    });
  await Promise.all(
    workers.map((w) => {
      const p = reply(w);
      w.postMessage({ cmd: "init", records, options: THREE, warmupMs: cfg.warmupMs });
      return p;
    }),
  );
  const run = async (active) => {
    const per = Math.ceil(records.length / active.length);
    const t0 = now();
    const done = await Promise.all(
      active.map((w, i) => {
        const p = reply(w);
        w.postMessage({ cmd: "run", from: i * per, to: Math.min(records.length, (i + 1) * per) });
        return p;
      }),
    );
    const wallMs = now() - t0;
    sink += done.reduce((a, d) => a + d.sink, 0);
    return { wallMs, recordsPerSecond: records.length / (wallMs / 1000), workerMs: done.map((d) => d.ms) };
  };
  const single = [];
  const parallel = [];
  for (let rep = 0; rep < cfg.reps; rep++) {
    status(`throughput rep ${rep + 1}/${cfg.reps}`);
    single.push(await run(workers.slice(0, 1)));
    parallel.push(await run(workers));
  }
  workers.forEach((w) => w.terminate());
  // The same loop on the page's own thread, for comparison with (b).
  const main = [];
  for (let rep = 0; rep < cfg.reps; rep++) {
    const t0 = now();
    for (const r of records) sink += prepare(r, THREE).prepared.length;
    const wallMs = now() - t0;
    main.push({ wallMs, recordsPerSecond: records.length / (wallMs / 1000) });
  }
  const med = (runs) => stats(runs.map((r) => r.recordsPerSecond)).median;
  return {
    records: records.length,
    workers: n,
    reps: cfg.reps,
    single: { recordsPerSecond: med(single), runs: single },
    parallel: { recordsPerSecond: med(parallel), runs: parallel },
    mainThread: { recordsPerSecond: med(main), runs: main },
  };
}

/**
 * `variants`: other builds of the package ({ label, url } of their index.js,
 * from run.mjs --variant): each one's prepare GG canonical is timed in the
 * same rounds as www/pkg's, so a profile choice shows both its numbers.
 */
window.bench = async (cfg, variants = []) => {
  status("loading modules");
  await ready();
  await initPep();
  const resolutionUs = timerResolutionUs();
  const { value, x } = ggInput();
  const equivalent = equivalenceCheck(x);

  // The peers' comparable operations on the same 32-byte input x.
  const pepKeys = pep.makePseudonymGlobalKeys();
  const pepPublic = pepKeys.public;
  const pepHash = sha512(x); // libpep's hash-to-group takes a 64-byte hash; made once, outside the timing

  // Checks the raw and canonical GG preparations really make a pseudonym.
  for (const identity of [GG_RAW, GG_CANONICAL]) {
    const out = prepare(identity, GG);
    if (out.prepared.length !== 1 || out.skipped.length !== 0) throw new Error("GG was not prepared");
  }
  const three = prepare(FORM, THREE);
  if (three.prepared.length !== 3) throw new Error(`NGGV+RGG+MRN: ${JSON.stringify(three.skipped)}`);

  const ops = [
    { id: "pf.gg.raw", label: "pseudoform prepare GG, raw form values", fn: () => prepare(GG_RAW, GG).prepared.length },
    {
      id: "pf.gg.canonical",
      label: "pseudoform prepare GG, canonical values (the blind)",
      fn: () => prepare(GG_CANONICAL, GG).prepared.length,
    },
    {
      id: "pf.gg.input",
      label: "pseudoform pseudonymInput GG, raw (normalisation only)",
      fn: () => pseudonymInput("GG", GG_RAW).length,
    },
    {
      id: "noble.blind",
      label: "@noble/curves ristretto255_oprf.oprf.blind(x)",
      peer: "pf.gg.canonical",
      fn: () => ristretto255_oprf.oprf.blind(x).blinded[0],
    },
    {
      id: "libpep.encrypt",
      label: "@nolai/libpep-wasm Pseudonym.fromHash + encryptPseudonymGlobal",
      peer: "pf.gg.canonical",
      fn: () => {
        const p = pep.Pseudonym.fromHash(pepHash);
        const e = pep.encryptPseudonymGlobal(p, pepPublic);
        p.free();
        e.free();
        return 1;
      },
    },
    {
      id: "pf.three.raw",
      label: "pseudoform prepare NGGV+RGG+MRN, raw form values",
      blinds: 3,
      fn: () => prepare(FORM, THREE).prepared.length,
    },
  ];
  for (const [i, variant] of variants.entries()) {
    const other = await import(variant.url);
    await other.ready();
    if (other.prepare(GG_CANONICAL, GG).prepared.length !== 1)
      throw new Error(`variant ${variant.label}: GG was not prepared`);
    ops.push({
      id: `variant.${i}`,
      label: `${variant.label}: prepare GG, canonical values`,
      peer: "pf.gg.canonical",
      fn: () => other.prepare(GG_CANONICAL, GG).prepared.length,
    });
  }
  const timings = measureAll(ops, cfg.timing, resolutionUs);
  const tput = await throughput(cfg.throughput);
  status("done");
  return {
    userAgent: navigator.userAgent,
    hardwareConcurrency: navigator.hardwareConcurrency,
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    timerResolutionUs: resolutionUs,
    ggInputValue: value,
    inputHex: hex(x),
    equivalent,
    timings,
    throughput: tput,
    sink,
  };
};

status("ready");
