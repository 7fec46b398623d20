// The leak scan of the page tests (audit.test.mjs, hostile.test.mjs): what
// the page's own module derives from the typed identities (for needlesOf in
// identities.mjs), what the chain leaves behind (every request a fault proxy
// forwarded, every SQLite file, the logs), and the search of those bytes
// for every needle, letting pass only a chance match inside a hex id.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

/** Shortest run of hex digits that is an id or a hash (a 128-bit jti is 32). */
const HEX_TOKEN = 32;
/** needlesOf leaves out every form shorter than this, so it is the lookup key's length. */
const KEY = 6;
const isHex = (byte) =>
  (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66) || (byte >= 0x41 && byte <= 0x46);

/**
 * The normalised forms and canonical inputs of each typed identity of
 * `list`, by the module of the page `page` shows (its `/pkg/index.js`):
 * `[{ normalised, inputs }]` in the order of `list`.
 */
export function derivedForms(page, list, types) {
  return page.evaluate(
    async ([list, types]) => {
      const m = await import("/pkg/index.js");
      await m.ready();
      return list.map((identity) => {
        const normalised = {};
        for (const [field, value] of Object.entries(identity)) {
          try {
            normalised[field] = m.normalise(field, value);
          } catch {
            /* not valid: reported by the form */
          }
        }
        const inputs = [];
        for (const type of types) {
          try {
            inputs.push(m.pseudonymInput(type, { ...identity, provider: "ura:00000001" }));
          } catch {
            /* not made */
          }
        }
        return { normalised, inputs };
      });
    },
    [list, types],
  );
}

/**
 * What the chain received and kept, as `[name, bytes]`: every request each
 * of `proxies` forwarded (method, URL, headers, body), every SQLite file
 * (and its -wal, -shm, -journal) of the chain's folder, and its logs.
 */
export async function chainHaystacks(chain, proxies) {
  const haystacks = [];
  for (const proxy of proxies) {
    for (const r of proxy.state.requests) {
      haystacks.push([
        `server-side ${r.url}`,
        Buffer.from(`${r.method} ${r.url}\n${JSON.stringify(r.headers)}\n${r.body}`),
      ]);
    }
  }
  for (const file of await readdir(chain.dir)) {
    if (/\.sqlite(-wal|-shm|-journal)?$/.test(file))
      haystacks.push([`database ${file}`, await readFile(join(chain.dir, file))]);
  }
  haystacks.push(["the chain's logs", Buffer.from(chain.logs.join(""))]);
  return haystacks;
}

/**
 * The needles (each at least 6 characters, as needlesOf makes them) for
 * `scan`: latin1 strings of their UTF-8 bytes, by their first 6.
 */
export function needleIndex(needles) {
  const index = new Map();
  for (const needle of needles) {
    const key = Buffer.from(needle, "utf8").toString("latin1");
    if (key.length < KEY) throw new Error("a needle shorter than 6 bytes would be missed");
    index.set(key.slice(0, KEY), [...(index.get(key.slice(0, KEY)) ?? []), key]);
  }
  return index;
}

/**
 * Every occurrence in `bytes` of a needle of `index`, in one pass: `leaks`,
 * the needles found (once per occurrence), and `inHexTokens`, the count of
 * occurrences inside a run of at least 32 hex digits. The databases hold hex
 * jtis and audit hashes, in which a short needle of hex characters (a date
 * as digits, a postcode like "1234ab") turns up by chance about once in 16⁶
 * positions; such a match is no value of the identity.
 */
export function scan(bytes, index) {
  const text = bytes.toString("latin1");
  const leaks = [];
  let inHexTokens = 0;
  for (let at = 0; at + KEY <= text.length; at++) {
    const candidates = index.get(text.slice(at, at + KEY));
    if (!candidates) continue;
    for (const needle of candidates) {
      if (!text.startsWith(needle, at)) continue;
      let start = at;
      let end = at + needle.length;
      while (start > 0 && isHex(bytes[start - 1])) start--;
      while (end < bytes.length && isHex(bytes[end])) end++;
      const allHex = [...Buffer.from(needle, "latin1")].every(isHex);
      if (allHex && end - start >= HEX_TOKEN) inHexTokens++;
      else leaks.push(needle);
    }
  }
  return { leaks, inHexTokens };
}
