// A typed client of the gateway, generated from docs/openapi.json: `npm run generate` writes src/gateway.ts with
// openapi-typescript, and openapi-fetch turns it into a client whose requests and answers are checked by tsc.
// No casts: every answer is narrowed by what the document says (status fields, `images` versus `status`, problems).
//
// Run: GATEWAY_URL=http://localhost:5080 CLIENT_KEY=dev-local-key npm run generate && npm run build && npm start
import { randomUUID } from "node:crypto";
import createClient from "openapi-fetch";
import type { components, paths } from "./gateway.js";

type Generation = components["schemas"]["GenerationResponse"];
type Problem = components["schemas"]["Problem"];
type ImageResult = components["schemas"]["ImageResult"];

const baseUrl = process.env["GATEWAY_URL"] ?? "http://localhost:5080";
const clientKey = process.env["CLIENT_KEY"] ?? "dev-local-key";

const gateway = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${clientKey}` } });

/** A problem as one line: what a frontend shows, and the trace id support asks for. */
function describe(problem: Problem): string {
  const fields = Object.entries(problem.errors ?? {}).map(([field, messages]) => `${field}: ${messages.join(" ")}`);
  return `${problem.status} ${problem.title} (${problem.type}, trace ${problem.trace_id})${fields.length ? ": " + fields.join("; ") : ""}`;
}

function fail(message: string): never {
  throw new Error(message);
}

/** Submits once; a retry with the same Idempotency-Key (say, after a timeout) replays the same answer and never bills twice. */
async function submit(prompt: string): Promise<Generation> {
  const idempotencyKey = randomUUID();
  const body: components["schemas"]["GenerateRequest"] = { prompt, aspect_ratio: "16:9", num_images: 1, output_format: "png" };
  const first = await gateway.POST("/v1/generations", { params: { header: { "Idempotency-Key": idempotencyKey } }, body });
  if (first.error) fail(`submit refused: ${describe(first.error)}`);
  const retry = await gateway.POST("/v1/generations", { params: { header: { "Idempotency-Key": idempotencyKey } }, body });
  if (retry.error) fail(`retried submit refused: ${describe(retry.error)}`);
  if (retry.data.id !== first.data.id || retry.response.headers.get("Idempotent-Replayed") !== "true") {
    fail(`the retry was not a replay: ${first.data.id} then ${retry.data.id}`);
  }
  console.log(`submitted ${first.data.id} (${first.data.status}), Location ${first.response.headers.get("Location")}; the retry replayed it`);
  return first.data;
}

/** Polls the cheap status route until the job ends. */
async function waitUntilDone(id: string): Promise<"COMPLETED" | "FAILED"> {
  for (let attempt = 0; attempt < 600; attempt++) {
    const { data, error } = await gateway.GET("/v1/generations/{id}/status", { params: { path: { id } } });
    if (error) fail(`status refused: ${describe(error)}`);
    if (data.status === "COMPLETED" || data.status === "FAILED") return data.status;
    if (data.status === "IN_QUEUE") console.log(`queued at ${data.queue_position ?? "?"}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return fail(`${id} did not end in time`);
}

/** The result route answers 200 with the result, or 202 with the status while pending: told apart by the body. */
async function readResult(id: string): Promise<ImageResult> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const { data, error } = await gateway.GET("/v1/generations/{id}/result", { params: { path: { id } } });
    if (error) fail(`result refused: ${describe(error)}`);
    if ("images" in data) return data;
    console.log(`result not ready: ${data.status}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return fail(`${id} has no result`);
}

/** Bad input comes back as a problem naming each field. */
async function showAProblem(): Promise<void> {
  const { data, error } = await gateway.POST("/v1/generations", { body: { prompt: "too many", num_images: 9 } });
  if (data) fail(`an invalid submit was accepted: ${data.id}`);
  if (!error.errors?.["num_images"]) fail(`the problem does not name num_images: ${describe(error)}`);
  if (!error.trace_id) fail("the problem has no trace_id");
  console.log(`refused as expected: ${describe(error)}`);
}

/** The history has what a gallery shows: prompt, options and images, in one request. */
async function showHistory(expected: string): Promise<void> {
  const { data, error } = await gateway.GET("/v1/generations", { params: { query: { limit: 10 } } });
  if (error) fail(`history refused: ${describe(error)}`);
  const item = data.items.find((i) => i.id === expected) ?? fail(`${expected} is not in the history`);
  const urls = (item.images ?? []).map((image) => (image.data_uri ? `${image.url} (data URI in the result)` : image.url));
  console.log(`history: "${item.prompt ?? ""}" ${item.options.aspect_ratio ?? "auto"} ${item.status} → ${urls.join(", ")}`);
  if (item.status !== "COMPLETED" || urls.length === 0) fail(`the history does not show the images of ${expected}`);
}

const generation = await submit("a lighthouse at dusk, photorealistic");
const ended = await waitUntilDone(generation.id);
if (ended !== "COMPLETED") fail(`${generation.id} ${ended}`);
const result = await readResult(generation.id);
const first = result.images[0] ?? fail("the result has no image");
console.log(`result: ${result.images.length} image(s), the first ${first.width ?? "?"}x${first.height ?? "?"} ${first.content_type ?? ""} at ${first.url}`);
await showAProblem();
await showHistory(generation.id);
console.log("example finished");
