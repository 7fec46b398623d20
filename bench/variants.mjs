#!/usr/bin/env node
// Builds the browser package with another per-crate opt-level, for
// bench/run.mjs --variant, which times it in the same page as www/pkg so that
// both numbers of a profile choice (size and speed) are in one table:
//
//   node bench/variants.mjs [NAME...]     (default: every variant below)
//
// Same sources, Cargo.lock (--locked), wasm profile and wasm-opt flags as
// ./build.sh build (the flags are read from scripts/package.sh), with one
// profile override given to cargo as --config; the JS layer is copied from
// crates/browser/js/ (its placeholder wasm-integrity.js: no SRI check for a
// variant) and its constants written by js-constants. Each package
// goes to target/bench-variants/NAME/pkg. Prints one line per variant:
// `LABEL=DIR`, the form run.mjs --variant takes.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");

/** name → [label, cargo --config overrides]. */
export const VARIANTS = {
  "dalek-s": ['curve25519-dalek opt-level "s"', ['profile.wasm.package.curve25519-dalek.opt-level="s"']],
  "dalek-3": ["curve25519-dalek opt-level 3", ["profile.wasm.package.curve25519-dalek.opt-level=3"]],
};

function run(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, {
    cwd: ROOT,
    stdio: ["ignore", process.stderr, process.stderr],
    env: { ...process.env, ...env },
  });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed`);
}

/** The wasm-opt features and flags of build.sh's build(), so a variant is optimised alike. */
function wasmOptArgs() {
  const script = readFileSync(join(ROOT, "scripts", "package.sh"), "utf8");
  const array = (name) => new RegExp(`${name}=\\(([^)]*)\\)`).exec(script)?.[1].split(/\s+/).filter(Boolean);
  const features = array("WASM_OPT_FEATURES");
  const flags = array("WASM_OPT_FLAGS");
  if (!features || !flags) throw new Error("cannot read the wasm-opt flags from scripts/package.sh");
  return [...features, ...flags];
}

function build(name) {
  const [label, overrides] = VARIANTS[name] ?? [];
  if (!label) throw new Error(`unknown variant ${name}; known: ${Object.keys(VARIANTS).join(", ")}`);
  const target = join(ROOT, "target", "bench-variants", name);
  const out = join(target, "pkg");
  process.stderr.write(`variants: building ${name} (${overrides.join(" ")})\n`);
  run(
    "cargo",
    [
      "build",
      "--locked",
      "--profile",
      "wasm",
      "--target",
      "wasm32-unknown-unknown",
      "-p",
      "pseudoform",
      "--lib",
      "--quiet",
      ...overrides.flatMap((o) => ["--config", o]),
    ],
    { CARGO_TARGET_DIR: target },
  );
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  run("wasm-bindgen", [
    "--target",
    "web",
    "--out-dir",
    out,
    "--out-name",
    "pseudoform",
    join(target, "wasm32-unknown-unknown", "wasm", "pseudoform.wasm"),
  ]);
  const wasm = join(out, "pseudoform_bg.wasm");
  run(join(ROOT, "node_modules", ".bin", "wasm-opt"), [...wasmOptArgs(), "-o", wasm, wasm]);
  const js = join(ROOT, "crates", "browser", "js");
  for (const f of readdirSync(js).filter((f) => f.endsWith(".js"))) copyFileSync(join(js, f), join(out, f));
  run("cargo", ["run", "--locked", "--quiet", "-p", "pseudoform-js-constants", "--", out]);
  return `${label}=${out}`;
}

const names = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(VARIANTS);
for (const name of names) process.stdout.write(`${build(name)}\n`);
