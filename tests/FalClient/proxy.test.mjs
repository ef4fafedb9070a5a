// The official @fal-ai/client (pinned in package.json) against the gateway's /api/fal/proxy, set up as a
// frontend would: proxyUrl pointing at the gateway, the frontend's own client key added by requestMiddleware.
// Run by Gateway.Tests (FalClientTests) with a gateway and the fal stand-in on loopback; by hand:
//   FAL_PROXY_URL=http://127.0.0.1:5080/api/fal/proxy CLIENT_KEY=dev-local-key OTHER_CLIENT_KEY=… node --test
import assert from "node:assert/strict";
import { test } from "node:test";
import { deflateSync } from "node:zlib";
import { ApiError, ValidationError, createFalClient, fal } from "@fal-ai/client";

const proxyUrl = required("FAL_PROXY_URL");
const clientKey = required("CLIENT_KEY");
const otherClientKey = required("OTHER_CLIENT_KEY");
const MODEL = "microsoft/mai-image-2.5";
const EDIT = `${MODEL}/edit`;
const TIMEOUT = { timeout: 60_000 };

// In a browser proxyUrl alone is enough; under Node the client proxies only when told to ("always").
const proxy = { url: proxyUrl, when: "always" };
const withKey = (key) => async (request) => ({ ...request, headers: { ...request.headers, "x-api-key": key } });

fal.config({ proxyUrl: proxy, credentials: undefined, requestMiddleware: withKey(clientKey) });
const other = createFalClient({ proxyUrl: proxy, credentials: undefined, requestMiddleware: withKey(otherClientKey) });
const anonymous = createFalClient({ proxyUrl: proxy, credentials: undefined, retry: { maxRetries: 0 } });

test("fal.subscribe in polling mode returns the images", TIMEOUT, async () => {
  const updates = [];
  const result = await fal.subscribe(MODEL, {
    input: { prompt: "a lighthouse at dusk", num_images: 2, aspect_ratio: "16:9" },
    mode: "polling",
    pollInterval: 100,
    onQueueUpdate: (update) => updates.push(update.status),
  });

  assert.equal(result.data.images.length, 2);
  assert.match(result.requestId, /^[0-9a-f-]{36}$/);
  assert.equal(updates.at(-1), "COMPLETED");
});

test("fal.subscribe in streaming mode follows the status stream", TIMEOUT, async () => {
  const updates = [];
  const result = await fal.subscribe(MODEL, {
    input: { prompt: "a harbour in fog" },
    mode: "streaming",
    onQueueUpdate: (update) => updates.push(update.status),
  });

  assert.equal(result.data.images.length, 1);
  assert.ok(updates.includes("COMPLETED"), updates.join(","));
});

test("fal.queue submit, status and result", TIMEOUT, async () => {
  const { request_id: requestId } = await fal.queue.submit(MODEL, { input: { prompt: "a red bicycle" } });
  const status = await fal.queue.status(MODEL, { requestId, logs: true });
  assert.ok(["IN_QUEUE", "IN_PROGRESS", "COMPLETED"].includes(status.status), status.status);

  await fal.queue.subscribeToStatus(MODEL, { requestId, mode: "polling", pollInterval: 100 });
  const result = await fal.queue.result(MODEL, { requestId });

  assert.equal(result.requestId, requestId);
  assert.equal(result.data.images.length, 1);
  assert.match(result.data.images[0].url, /^https?:\/\//);
});

test("fal.queue.cancel of a running request is accepted", TIMEOUT, async () => {
  const { request_id: requestId } = await fal.queue.submit(MODEL, { input: { prompt: "[[run:5000]] a slow one" } });

  await fal.queue.cancel(MODEL, { requestId });

  const status = await fal.queue.status(MODEL, { requestId });
  assert.ok(["IN_QUEUE", "IN_PROGRESS", "COMPLETED"].includes(status.status), status.status);
});

test("fal.storage.upload, then an edit of the uploaded image", TIMEOUT, async () => {
  const url = await fal.storage.upload(new Blob([png(16, 12)], { type: "image/png" }));
  assert.match(url, /^https?:\/\//);

  const result = await fal.subscribe(EDIT, {
    input: { prompt: "make it blue", image_urls: [url] },
    pollInterval: 100,
  });
  assert.equal(result.data.images.length, 1);

  // A Blob in the input is uploaded by the client itself (storage.transformInput), through the proxy too.
  const inline = await fal.subscribe(EDIT, {
    input: { prompt: "make it green", image_urls: [new Blob([png(8, 8)], { type: "image/png" })] },
    pollInterval: 100,
  });
  assert.equal(inline.data.images.length, 1);
});

test("invalid input surfaces as the client's ValidationError naming the field", TIMEOUT, async () => {
  await assert.rejects(fal.queue.submit(MODEL, { input: { prompt: "x", num_images: 9 } }), (error) => {
    assert.ok(error instanceof ValidationError, `${error.name}: ${error.message}`);
    assert.equal(error.status, 422);
    assert.equal(error.getFieldErrors("num_images").length, 1);
    return true;
  });
  await assert.rejects(fal.subscribe(EDIT, { input: { prompt: "x" } }), (error) => {
    assert.ok(error instanceof ValidationError);
    assert.deepEqual(error.fieldErrors[0].loc, ["body", "image_urls"]);
    return true;
  });
});

test("a call without a client key is refused with 401", TIMEOUT, async () => {
  await assert.rejects(anonymous.queue.submit(MODEL, { input: { prompt: "x" } }), (error) => {
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 401);
    return true;
  });
});

test("a frontend may pass its client key as credentials (Authorization: Key)", TIMEOUT, async () => {
  const keyed = createFalClient({ proxyUrl: proxy, credentials: clientKey, suppressLocalCredentialsWarning: true });
  const { request_id: requestId } = await keyed.queue.submit(MODEL, { input: { prompt: "x" } });
  const status = await keyed.queue.status(MODEL, { requestId });
  assert.ok(status.status);
});

test("a forbidden target is refused with 400 Invalid request", TIMEOUT, async () => {
  await assert.rejects(fal.queue.submit("fal-ai/flux/dev", { input: { prompt: "x" } }), (error) => {
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 400);
    assert.equal(error.body.message, "Invalid request");
    return true;
  });
  // fal.run (synchronous) is off unless FalProxy__AllowRun is set.
  await assert.rejects(fal.run(MODEL, { input: { prompt: "x" } }), (error) => error instanceof ApiError && error.status === 400);
});

test("another client's request id answers 404 to status, result and cancel", TIMEOUT, async () => {
  const { request_id: requestId } = await fal.queue.submit(MODEL, { input: { prompt: "mine" } });
  const notFound = (error) => {
    assert.ok(error instanceof ApiError, String(error));
    assert.equal(error.status, 404);
    assert.equal(error.body.detail, `Request ${requestId} not found`);
    return true;
  };

  await assert.rejects(other.queue.status(MODEL, { requestId }), notFound);
  await assert.rejects(other.queue.result(MODEL, { requestId }), notFound);
  await assert.rejects(other.queue.cancel(MODEL, { requestId }), notFound);
});

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`Set ${name} (the .NET test FalClientTests sets it).`);
  }
  return value;
}

/** A real PNG of the given size (one colour), made without dependencies. */
function png(width, height) {
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(width * 3, 0x80)]);
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(Buffer.concat(Array(height).fill(row)))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

function crc32(bytes) {
  let crc = ~0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return ~crc >>> 0;
}
