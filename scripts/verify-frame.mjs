#!/usr/bin/env node
// An auditor's check of a served identity frame against a build of the
// tagged source: fetches every file the build's manifest lists from the
// frame URL, and the served manifest itself, computes each SHA-384 and
// reports match or mismatch per file (docs/operations.md, "Checking a
// served frame").
//
//   node scripts/verify-frame.mjs <frame-url> [manifest.json]
//
// <frame-url> is the frame page's folder, e.g. https://ttp.example.nl/frame/;
// the manifest defaults to target/frame/manifest.json (./build.sh build).
// Exit status: 0 when every file matches, 1 on any mismatch or failed
// fetch, 2 when the arguments or the manifest are unusable.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";

const USAGE = "usage: node scripts/verify-frame.mjs <frame-url> [manifest.json]";
const TIMEOUT_MS = 15_000;

/** `sha384-` and the base64 SHA-384 of `bytes`, as SRI writes it. */
function sri(bytes) {
  return `sha384-${createHash("sha384").update(bytes).digest("base64")}`;
}

/** Prints `message` and ends with exit status 2. */
function unusable(message) {
  console.error(`verify-frame: ${message}`);
  process.exit(2);
}

/** The frame folder's URL from the argument, ending in `/`. */
function frameUrl(text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    unusable(`${JSON.stringify(text)} is not a URL\n${USAGE}`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") unusable("the frame URL must be http(s)");
  if (url.search || url.hash) unusable("the frame URL has no query or fragment");
  if (!url.pathname.endsWith("/")) url.pathname = url.pathname.replace(/[^/]*$/, "");
  return url;
}

/** The `files` of a version-1 manifest: name → `sha384-…`, names checked. */
function manifestFiles(text, path) {
  let manifest;
  try {
    manifest = JSON.parse(text);
  } catch {
    unusable(`${path} is not JSON`);
  }
  if (manifest?.version !== 1 || typeof manifest.files !== "object" || manifest.files === null) {
    unusable(`${path} is not a version 1 manifest ({"version":1,"files":{…}})`);
  }
  const entries = Object.entries(manifest.files);
  if (entries.length === 0) unusable(`${path} lists no files`);
  for (const [name, digest] of entries) {
    if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(name)) unusable(`${path}: ${JSON.stringify(name)} is not a file name`);
    if (typeof digest !== "string" || !/^sha384-[A-Za-z0-9+/]{64}$/.test(digest)) {
      unusable(`${path}: the digest of ${name} is not sha384-<base64>`);
    }
  }
  return entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The served bytes of `name` under `base`, or a reason they could not be had. */
async function served(base, name) {
  try {
    const response = await fetch(new URL(name, base), {
      redirect: "error",
      cache: "no-store",
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    if (!response.ok) return { error: `HTTP ${response.status}` };
    return { bytes: Buffer.from(await response.arrayBuffer()), headers: response.headers };
  } catch (e) {
    return { error: e?.cause?.code ?? e?.name ?? "fetch failed" };
  }
}

async function main() {
  const [urlArg, manifestPath = "target/frame/manifest.json", ...rest] = process.argv.slice(2);
  if (!urlArg || rest.length > 0) unusable(USAGE);
  const base = frameUrl(urlArg);
  let manifestBytes;
  try {
    manifestBytes = await readFile(manifestPath);
  } catch {
    unusable(`cannot read ${manifestPath} (build the frame with ./build.sh build)`);
  }
  const files = manifestFiles(manifestBytes.toString("utf8"), manifestPath);
  const expected = [...files, ["manifest.json", sri(manifestBytes)]];

  let failures = 0;
  console.log(`frame ${base.href} against ${manifestPath}`);
  for (const [name, digest] of expected) {
    const answer = await served(base, name);
    if (answer.error) {
      failures++;
      console.log(`FAILED    ${name}: ${answer.error}`);
      continue;
    }
    const got = sri(answer.bytes);
    if (got === digest) {
      console.log(`match     ${name} ${got}`);
    } else {
      failures++;
      console.log(`MISMATCH  ${name}: served ${got}, built ${digest}`);
    }
  }
  const page = await served(base, "");
  const csp = page.headers?.get("content-security-policy") ?? "";
  const ancestors = /frame-ancestors ([^;]*)/.exec(csp)?.[1]?.trim();
  console.log(`frame-ancestors of the page: ${ancestors ?? "(none sent)"}`);
  console.log(failures === 0 ? "all files match the build" : `${failures} of ${expected.length} files do not match`);
  process.exit(failures === 0 ? 0 : 1);
}

await main();
