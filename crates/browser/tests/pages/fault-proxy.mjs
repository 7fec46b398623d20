// A real HTTP proxy in front of the real TTP, for the faults a healthy TTP
// cannot be made to produce on demand. Modes:
//   pass            forward unchanged
//   down            accept the connection and drop it (service unreachable)
//   downForPost     drop only POST requests (a registry whose page loaded but whose API is down)
//   error500        answer 500 (with CORS headers, so the page sees the status)
//   slow            forward, but only after `slowMs`
//   malformed       answer 200 with JSON that holds no valid JWE
//   wrongRecipient  forward with the recipient swapped: a real JWE for another registry
//                   (without R's digest, which that registry may not receive: the
//                   TTP would refuse the request before making a JWE)
//   noCors          forward, but strip the CORS headers (TTP refusing the form's origin)
//   dropAnswer      forward a POST, then drop the connection before answering
//                   (the registry stored the record but the page never hears it)
//   tamper          forward, but change one byte of the answer for `state.tamperPath`
//                   (a tampered script or wasm on the way to the browser)
//   expiredOnce     answer the next POST with the registry's 422 `pseudonym.expired`
//                   without forwarding it (a resend after the JWE's lifetime of a
//                   submission the registry never had), then pass again
//   rewrite         forward, with the request headers changed by `state.rewrite(headers, body)`
//                   (a proof stripped or replaced on the way)
//   resendOnce      forward the next evaluation (POST /v1/evaluate or /oprf/eval) twice and
//                   answer with the second answer, then pass
//                   (a load balancer resending a request after its replica died: the TTP
//                   refuses the second as a spent proof)
// In every mode, a path of `state.pages` (path → { headers, body }) is answered
// by the proxy itself: a test's own page on the proxied origin.
// Every request that reaches the proxy is recorded (method, url, headers, body).
import http from "node:http";
import { once } from "node:events";

export async function startFaultProxy(target, { otherRecipient } = {}) {
  const state = { mode: "pass", slowMs: 3000, requests: [], target, otherRecipient, pages: {} };
  const cors = (req) => ({
    "access-control-allow-origin": req.headers.origin ?? "*",
    "access-control-allow-headers": "authorization, content-type, dpop",
    "access-control-allow-methods": "GET, POST",
    vary: "origin",
  });

  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    let body = Buffer.concat(chunks);
    state.requests.push({ method: req.method, url: req.url, headers: { ...req.headers }, body: body.toString("utf8") });
    const mode = state.mode;
    const page = state.pages[req.url];
    if (page) {
      res.writeHead(200, page.headers);
      res.end(page.body);
      return;
    }

    if (mode === "down" || (mode === "downForPost" && req.method === "POST")) {
      req.socket.destroy();
      return;
    }
    if (mode === "error500" && req.method !== "OPTIONS") {
      res.writeHead(500, { "content-type": "application/json", ...cors(req) });
      res.end(JSON.stringify({ code: "internal", message: "internal error", detail: "internal error" }));
      return;
    }
    if (mode === "expiredOnce" && req.method === "POST") {
      state.mode = "pass";
      res.writeHead(422, { "content-type": "application/json", ...cors(req) });
      res.end(JSON.stringify({ code: "pseudonym.expired", message: "the pseudonym has expired", field: "record" }));
      return;
    }
    if (mode === "malformed" && req.method === "POST") {
      res.writeHead(200, { "content-type": "application/json", ...cors(req) });
      res.end(JSON.stringify({ records: [{ jwe: "this.is.not.a.jwe!" }], jwe: 42 }));
      return;
    }
    const other = state.otherRecipient;
    const json = (req.headers["content-type"] ?? "").includes("json");
    if (mode === "wrongRecipient" && req.method === "POST" && json && body.length > 0 && other) {
      const request = JSON.parse(body.toString("utf8"));
      request.recipientOrganization = other.organization;
      request.recipientScope = other.scope;
      if (Array.isArray(request.records)) for (const record of request.records) delete record?.reversible;
      body = Buffer.from(JSON.stringify(request));
    }
    if (mode === "slow") await new Promise((r) => setTimeout(r, state.slowMs));

    const headers = { ...req.headers, host: new URL(state.target).host, "content-length": String(body.length) };
    const evaluation = ["/v1/evaluate", "/oprf/eval"].includes(new URL(req.url, "http://x").pathname);
    if (mode === "resendOnce" && req.method === "POST" && evaluation) {
      state.mode = "pass";
      await new Promise((resolve, reject) => {
        const first = http.request(new URL(req.url, state.target), { method: "POST", headers }, (up) => {
          up.resume();
          up.on("end", resolve);
        });
        first.on("error", reject);
        first.end(body);
      });
    }
    if (mode === "rewrite" && req.method === "POST") state.rewrite?.(headers, body.toString("utf8"));
    const upstream = http.request(new URL(req.url, state.target), { method: req.method, headers }, async (up) => {
      const out = { ...up.headers };
      if (mode === "noCors") {
        for (const h of Object.keys(out)) if (h.startsWith("access-control-")) delete out[h];
      }
      if (mode === "dropAnswer" && req.method === "POST") {
        up.resume();
        up.on("end", () => req.socket.destroy());
        return;
      }
      if (mode === "tamper" && new URL(req.url, "http://x").pathname === state.tamperPath) {
        const parts = [];
        for await (const c of up) parts.push(c);
        const bytes = Buffer.concat(parts);
        bytes[bytes.length - 2] ^= 0x01;
        res.writeHead(up.statusCode ?? 502, { ...out, "content-length": String(bytes.length) });
        res.end(bytes);
        return;
      }
      res.writeHead(up.statusCode ?? 502, out);
      up.pipe(res);
    });
    upstream.on("error", () => {
      if (!res.headersSent) {
        res.writeHead(502);
      }
      res.end();
    });
    upstream.end(body);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    state,
    setMode(mode) {
      state.mode = mode;
    },
    /** Points the proxy at its upstream (when that starts after the proxy). */
    setTarget(url, otherRecipient) {
      state.target = url;
      state.otherRecipient = otherRecipient ?? state.otherRecipient;
    },
    async stop() {
      server.closeAllConnections();
      server.close();
    },
  };
}
