// Loads a page served from its own loopback origin with one <img> per entry of IMAGE_URLS ({"name": "url"}) in headless
// Chromium (CHROMIUM, default /usr/bin/chromium), and prints, as one JSON line, for each image whether it loaded, its
// natural size, and the HTTP status the browser got for it.
import http from 'node:http';
import { chromium } from 'playwright-core';

const urls = JSON.parse(process.env.IMAGE_URLS ?? '{}');
const escape = (text) => text.replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;');
const html = '<!doctype html><html><head><title>gallery</title></head><body>'
  + Object.entries(urls).map(([name, url]) => `<img id="${escape(name)}" src="${escape(url)}" alt="${escape(name)}">`).join('')
  + '</body></html>';

const server = http.createServer((request, response) => {
  response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  response.end(html);
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  timeout: 60_000,
});
try {
  const page = await browser.newPage();
  const statuses = {};
  const failures = {};
  page.on('response', (response) => { statuses[response.url()] = response.status(); });
  page.on('requestfailed', (request) => { failures[request.url()] = request.failure()?.errorText ?? 'failed'; });
  await page.goto(`http://127.0.0.1:${server.address().port}/`, { waitUntil: 'load', timeout: 30_000 });
  const images = await page.evaluate((names) => Promise.all(names.map((name) => new Promise((resolve) => {
    const img = document.getElementById(name);
    const settle = () => resolve({ name, loaded: img.complete && img.naturalWidth > 0, width: img.naturalWidth, height: img.naturalHeight });
    if (img.complete) {
      settle();
    } else {
      img.addEventListener('load', settle, { once: true });
      img.addEventListener('error', settle, { once: true });
    }
  }))), Object.keys(urls));
  const result = Object.fromEntries(images.map((image) => [image.name,
    { ...image, status: statuses[urls[image.name]] ?? null, failure: failures[urls[image.name]] ?? null }]));
  console.log(JSON.stringify({ origin: new URL(page.url()).origin, images: result }));
} finally {
  await browser.close();
  server.close();
}
