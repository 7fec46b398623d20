// The whole chain for page tests: the real `pseudoform-demo` binary (TTP and
// two registries, real SQLite, generated keys, the provider portal and the
// identity frame's host) on loopback, with real fault
// proxies in front of the TTP and of registry A. The form is loaded through
// the registry proxy, and the TTP it is told about is the TTP proxy.
import { spawn } from "node:child_process";
import { constants, createDecipheriv, createPrivateKey, privateDecrypt } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startFaultProxy } from "./fault-proxy.mjs";

export const ROOT = fileURLToPath(new URL("../../../..", import.meta.url));
const DEMO = join(ROOT, "target", "release", "pseudoform-demo");

/**
 * The plaintext `{ blindFactors, rec }` of a submission's
 * `encryptedBlindFactors` (RSA-OAEP-256 + A256GCM, AAD the protected header),
 * opened with the PEM private key of the registry it was sealed to.
 */
export function openSealed(compact, privateKeyPem) {
  const part = (text) => Buffer.from(text, "base64url");
  const [header, wrapped, iv, ciphertext, tag] = compact.split(".");
  const cek = privateDecrypt(
    { key: createPrivateKey(privateKeyPem), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
    part(wrapped),
  );
  const decipher = createDecipheriv("aes-256-gcm", cek, part(iv));
  decipher.setAAD(Buffer.from(header, "ascii"));
  decipher.setAuthTag(part(tag));
  const plaintext = Buffer.concat([decipher.update(part(ciphertext)), decipher.final()]);
  return { header: JSON.parse(part(header).toString("utf8")), ...JSON.parse(plaintext.toString("utf8")) };
}

/**
 * Starts the chain. `dir` reuses the folder of an earlier chain (stopped
 * with `stop({ keep: true })`): its keys, configuration and databases, as a
 * restart does; `args` are more options of pseudoform-demo.
 */
export async function startChain({ rateLimit, dir: reused, args: more = [] } = {}) {
  const dir = reused ?? (await mkdtemp(join(tmpdir(), "pseudoform-chain-")));
  const ttpProxy = await startFaultProxy("http://127.0.0.1:1");
  const registryProxy = await startFaultProxy("http://127.0.0.1:1");
  // Registry A's frame-mode origin (a frame parent only, never a TTP origin).
  const framedProxy = await startFaultProxy("http://127.0.0.1:1");
  const args = [
    "--dir",
    dir,
    "--www",
    join(ROOT, "www"),
    "--json",
    "--ttp-port",
    "0",
    "--registry-port",
    "0",
    "--framed-registry-port",
    "0",
    "--second-registry-port",
    "0",
    "--portal-port",
    "0",
    "--frame-port",
    "0",
    "--frame-dir",
    join(ROOT, "target", "frame"),
    "--public-ttp-url",
    ttpProxy.url,
    "--extra-origin",
    registryProxy.url,
    "--public-registry-url",
    registryProxy.url,
    "--public-registry-url",
    framedProxy.url,
    "--extra-frame-parent-origin",
    framedProxy.url,
  ];
  if (rateLimit) args.push("--rate-limit", String(rateLimit));
  args.push(...more);
  const child = spawn(DEMO, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const logs = [];
  child.stderr.on("data", (d) => logs.push(d.toString()));
  let line = "";
  for await (const chunk of child.stdout) {
    line += chunk;
    if (line.includes("\n")) break;
  }
  let urls;
  try {
    urls = JSON.parse(line.split("\n")[0]);
  } catch {
    child.kill();
    throw new Error(`pseudoform-demo did not start: ${logs.join("")}`);
  }
  child.stdout.on("data", (d) => logs.push(d.toString()));
  ttpProxy.setTarget(urls.ttp, urls.recipientB);
  registryProxy.setTarget(urls.registryA);
  framedProxy.setTarget(urls.registryAFramed);

  const json = async (url, init) => {
    const response = await fetch(url, init);
    return { status: response.status, body: await response.json().catch(() => undefined) };
  };

  return {
    dir,
    urls,
    logs,
    ttpProxy,
    registryProxy,
    /** In front of registry A's frame-mode origin, where its framed pages are opened. */
    framedProxy,
    /** The demo form, as the clinician opens it (through the registry proxy). */
    formUrl: `${registryProxy.url}/`,
    /** The demo form in frame mode (the identity frame on the frame origin, `urls.frame`). */
    frameFormUrl: `${framedProxy.url}/frame.html`,
    /** Records held by registry A (or B). */
    async records(which = "A") {
      const base = which === "A" ? urls.registryA : urls.registryB;
      return (await json(`${base}/api/records`)).body;
    },
    json,
    /** The sealed blind factors of a submission to registry A, opened with its key. */
    async openSealed(compact) {
      return openSealed(compact, await readFile(join(dir, "registry-a-key.pem")));
    },
    /** Stops the chain; its folder is removed unless `keep` (for a restart in it). */
    async stop({ keep = false } = {}) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await once(child, "exit");
      }
      await ttpProxy.stop();
      await registryProxy.stop();
      await framedProxy.stop();
      if (!keep) await rm(dir, { recursive: true, force: true });
    },
  };
}
