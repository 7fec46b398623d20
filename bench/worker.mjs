// A throughput worker: loads the built package like a page would and runs
// prepare() for NGGV+RGG+MRN over its slice of the records it was given.
import { prepare, ready } from "/www/pkg/index.js";

let records = [];
let options;

self.onmessage = async ({ data }) => {
  if (data.cmd === "init") {
    await ready();
    records = data.records;
    options = data.options;
    // Warm-up so the wasm is tiered up before the timed runs.
    let sink = 0;
    const start = performance.now();
    for (let i = 0; performance.now() - start < data.warmupMs || i < 50; i++) {
      sink += prepare(records[i % records.length], options).prepared.length;
    }
    self.postMessage({ cmd: "ready", sink });
  } else if (data.cmd === "run") {
    let sink = 0;
    const t0 = performance.now();
    for (let i = data.from; i < data.to; i++) {
      const { prepared, skipped } = prepare(records[i], options);
      sink += prepared.length + skipped.length;
    }
    self.postMessage({ cmd: "done", ms: performance.now() - t0, sink });
  }
};
