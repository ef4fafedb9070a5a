// A real browser against the gateway on another origin (issue 11). Gateway.Tests (BrowserTests) starts the gateway,
// a local OIDC issuer and the fal stand-in, then runs this file with node --test; it can also be run by hand with
// GATEWAY_URL, ACCESS_TOKEN, USER_ID and PAGE_PORT set.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import path from "node:path";
import * as esbuild from "esbuild";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const gateway = required("GATEWAY_URL").replace(/\/$/, "");
const token = required("ACCESS_TOKEN");
const user = required("USER_ID");
const pagePort = Number(required("PAGE_PORT"));
const pageOrigin = `http://127.0.0.1:${pagePort}`;

let server;
let browser;
let page;
const consoleLines = [];

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through Gateway.Tests (BrowserTests) or set it by hand`);
  return value;
}

before(async () => {
  // The official client is CommonJS: bundled for the browser as a frontend's build (Vite's esbuild) would.
  const bundle = await esbuild.build({
    stdin: { contents: "export { fal } from '@fal-ai/client';", resolveDir: here, loader: "js" },
    bundle: true, format: "esm", platform: "browser", write: false, logLevel: "silent",
  });
  const files = {
    "/": { type: "text/html; charset=utf-8", body: await readFile(path.join(here, "page.html")) },
    "/fal-client.js": { type: "text/javascript; charset=utf-8", body: bundle.outputFiles[0].text },
  };
  server = http.createServer((req, res) => {
    const file = files[req.url];
    res.writeHead(file ? 200 : 404, { "content-type": file?.type ?? "text/plain" });
    res.end(file?.body ?? "not found");
  });
  await new Promise((resolve, reject) => server.once("error", reject).listen(pagePort, "127.0.0.1", resolve));

  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", timeout: 60_000 });
  page = await browser.newPage();
  page.on("console", (message) => consoleLines.push(`[${message.type()}] ${message.text()}`));
  page.on("pageerror", (error) => consoleLines.push(`[pageerror] ${error.message}`));
  await page.goto(pageOrigin + "/");
  await page.waitForFunction(() => window.fal !== undefined, null, { timeout: 30_000 });
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve()));
});

/** Runs fn in the page; on failure the page's console is part of the message. */
async function inPage(fn, arg) {
  try {
    return await page.evaluate(fn, arg);
  } catch (error) {
    error.message += `\npage console:\n${consoleLines.join("\n")}`;
    throw error;
  }
}

test("the page and the gateway are on different origins", () => {
  assert.notEqual(new URL(gateway).origin, pageOrigin);
});

test("fetch with a bearer token submits and reads Location and RateLimit; EventSource follows links.events to completed", async () => {
  const submitted = await inPage(async ({ gateway, token }) => {
    const response = await fetch(`${gateway}/v1/generations`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", "Idempotency-Key": crypto.randomUUID() },
      body: JSON.stringify({ prompt: "a lighthouse, from a browser" }),
    });
    return {
      status: response.status,
      location: response.headers.get("Location"),
      rateLimit: response.headers.get("RateLimit"),
      rateLimitPolicy: response.headers.get("RateLimit-Policy"),
      body: await response.json(),
    };
  }, { gateway, token });

  assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
  assert.equal(submitted.location, `/v1/generations/${submitted.body.id}`);
  assert.match(submitted.rateLimit, /"minute";r=\d+;t=\d+/);
  assert.match(submitted.rateLimitPolicy, /"minute";q=\d+;w=60/);
  assert.equal(submitted.body.user, user);
  assert.match(submitted.body.links.events, /\/events\?ticket=/);

  const streamed = await inPage(({ gateway, link }) => new Promise((resolve, reject) => {
    const statuses = [];
    const source = new EventSource(new URL(link, gateway));
    const timer = setTimeout(() => { source.close(); reject(new Error(`no completed event in 30 s; saw ${statuses}`)); }, 30_000);
    source.addEventListener("status", (e) => statuses.push(JSON.parse(e.data).status));
    source.addEventListener("completed", (e) => { clearTimeout(timer); source.close(); resolve({ statuses, generation: JSON.parse(e.data) }); });
    source.addEventListener("failed", (e) => { clearTimeout(timer); source.close(); reject(new Error(`failed: ${e.data}`)); });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) { clearTimeout(timer); reject(new Error("the EventSource was refused")); }
    };
  }), { gateway, link: submitted.body.links.events });

  assert.equal(streamed.generation.id, submitted.body.id);
  assert.equal(streamed.generation.status, "COMPLETED");
  assert.ok(streamed.generation.result.images.length >= 1);
});

test("EventSource on the plain route (no ticket, no header) is refused", async () => {
  const id = await inPage(async ({ gateway, token }) => {
    const response = await fetch(`${gateway}/v1/generations`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ prompt: "unsigned stream" }),
    });
    return (await response.json()).id;
  }, { gateway, token });

  const outcome = await inPage(({ url }) => new Promise((resolve) => {
    const source = new EventSource(url);
    source.addEventListener("completed", () => { source.close(); resolve("opened"); });
    source.onerror = () => { if (source.readyState === EventSource.CLOSED) resolve("refused"); };
    setTimeout(() => { source.close(); resolve("timeout"); }, 15_000);
  }), { url: `${gateway}/v1/generations/${id}/events` });

  assert.equal(outcome, "refused");
});

for (const mode of ["polling", "streaming"]) {
  test(`@fal-ai/client subscribe in ${mode} mode through proxyUrl, the token added by requestMiddleware`, async () => {
    const outcome = await inPage(async ({ gateway, token, mode }) => {
      window.fal.config({
        proxyUrl: `${gateway}/api/fal/proxy`,
        requestMiddleware: async (request) => ({ ...request, headers: { ...request.headers, authorization: `Bearer ${token}` } }),
      });
      const updates = [];
      const result = await window.fal.subscribe("microsoft/mai-image-2.5", {
        input: { prompt: `subscribed, ${mode}` },
        mode,
        pollInterval: 100,
        onQueueUpdate: (update) => updates.push(update.status),
      });
      const own = await fetch(`${gateway}/v1/generations/${result.requestId}`, { headers: { Authorization: `Bearer ${token}` } });
      return { requestId: result.requestId, images: result.data.images, updates, owner: (await own.json()).user, ownStatus: own.status };
    }, { gateway, token, mode });

    assert.ok(outcome.requestId);
    assert.ok(outcome.images.length >= 1 && outcome.images[0].url, JSON.stringify(outcome.images));
    assert.ok(outcome.updates.length >= 1, `onQueueUpdate was never called (${mode})`);
    assert.equal(outcome.updates.at(-1), "COMPLETED", `updates: ${outcome.updates}`);
    assert.equal(outcome.ownStatus, 200);
    assert.equal(outcome.owner, user, "the job is the signed-in user's through the /v1 API too");
  });
}

test("@fal-ai/client storage.upload through proxyUrl puts the file where its URL serves it", async () => {
  const outcome = await inPage(async ({ gateway, token }) => {
    window.fal.config({
      proxyUrl: `${gateway}/api/fal/proxy`,
      requestMiddleware: async (request) => ({ ...request, headers: { ...request.headers, authorization: `Bearer ${token}` } }),
    });
    const canvas = document.createElement("canvas");
    canvas.width = 32;
    canvas.height = 24;
    const context = canvas.getContext("2d");
    context.fillStyle = "#3366cc";
    context.fillRect(0, 0, 32, 24);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    const url = await window.fal.storage.upload(new File([blob], "input.png", { type: "image/png" }));
    const back = await fetch(url);
    const bytes = new Uint8Array(await back.arrayBuffer());
    const sent = new Uint8Array(await blob.arrayBuffer());
    return { url, sent: sent.length, back: bytes.length, same: sent.every((b, i) => b === bytes[i]) };
  }, { gateway, token });

  assert.match(outcome.url, /^http:\/\/127\.0\.0\.1:\d+\/files\//);
  assert.equal(outcome.back, outcome.sent);
  assert.ok(outcome.same, "the bytes read back are the bytes uploaded");
});
