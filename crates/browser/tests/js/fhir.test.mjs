// The workbench's FHIR download (www/pkg/workbench/fhir.js) gives the bytes
// of the Rust bundle_of on the shared vector docs/vectors/fhir-bundle.json,
// and the Bundle holds no identifying element: each Patient only its
// pseudonym identifiers and the method version's tag.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../../..", import.meta.url));
const { bundleOf, canonicalJson } = await import(join(ROOT, "www", "pkg", "workbench", "fhir.js"));
const vector = JSON.parse(await readFile(join(ROOT, "docs", "vectors", "fhir-bundle.json"), "utf8"));

test("bundleOf gives the bytes of the Rust bundle_of on the shared vector", async () => {
  const bundle = await bundleOf(
    vector.batchId,
    vector.recipientOrganization,
    vector.recipientScope,
    vector.submissions,
  );
  assert.equal(bundle, vector.bundle);
});

test("a Patient carries its pseudonym identifiers and the method version only", async () => {
  const bundle = JSON.parse(vector.bundle);
  const patients = bundle.entry.filter((e) => e.resource.resourceType === "Patient").map((e) => e.resource);
  assert.equal(patients.length, vector.submissions.length);
  for (const p of patients) assert.deepEqual(Object.keys(p).sort(), ["identifier", "meta", "resourceType"]);
});

test("canonicalJson writes as serde_json: compact, sorted members, the same escapes", () => {
  assert.equal(
    canonicalJson({ b: [1, 'x\n\t\u0001"\\é✓'], a: null, c: { z: true, y: false } }),
    '{"a":null,"b":[1,"x\\n\\t\\u0001\\"\\\\é✓"],"c":{"y":false,"z":true}}',
  );
});
