// Swagger UI as a person uses it: the built server on 127.0.0.1, /docs opened in headless
// Chromium (Debian's /usr/bin/chromium driven by playwright-core), "Try it out" on POST /infer
// with an embedding request, Execute, and the 200 response with "embeddings" shown in the page.
// The screenshot is kept in test/.artifacts/deploy/swagger-try-it-out.png. The page may reach
// 127.0.0.1 only: any other request is aborted (and reported).
import t from 'tap';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

import { artifactsDir } from '../helpers/python-fixtures.js';
import { type Proc, ensureBuilt, freePort, startServer, systemBinary } from '../helpers/deploy.js';
import { serverFixtures } from '../helpers/server.js';

const chromiumBin = systemBinary('/usr/bin/chromium');
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const BODY = '{"model": "demo-embedder", "text": "hello"}';

t.test('/docs: Try it out on POST /infer shows a 200 with embeddings', { skip: chromiumBin.skip, timeout: 120_000 }, async (t) => {
  const complaint = ensureBuilt();
  if (complaint) t.comment(complaint);
  const port = await freePort();
  const procs: Proc[] = [];
  const server = await startServer(port, { MODEL_REPOSITORY: join(serverFixtures(), 'models'), LOAD_MODELS: 'demo-embedder' });
  procs.push(server);
  const browser = await chromium.launch({ executablePath: chromiumBin.path, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
  t.teardown(async () => {
    await browser.close().catch(() => undefined);
    for (const p of procs) await p.stop(5000);
  });

  const context = await browser.newContext({ viewport: { width: 1280, height: 1200 } });
  const blocked: string[] = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1' || url.protocol === 'data:' || url.protocol === 'blob:') return route.continue();
    blocked.push(url.href);
    return route.abort();
  });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const consoleErrors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });

  const dir = join(artifactsDir, 'deploy');
  mkdirSync(dir, { recursive: true });
  // On a failure, keep what the page showed.
  t.teardown(async () => {
    if (!t.passing()) await page.screenshot({ path: join(dir, 'swagger-failure.png'), fullPage: true }).catch(() => undefined);
  });

  const base = `http://127.0.0.1:${port}`;
  await page.goto(`${base}/docs`, { waitUntil: 'domcontentloaded' });
  await page.locator('.swagger-ui .info .title').waitFor();
  t.match(await page.locator('.swagger-ui .info .title').innerText(), /ATenSpace Serve/, 'Swagger UI shows the API title');

  const op = page.locator('.opblock.opblock-post', { has: page.locator('.opblock-summary-path[data-path="/infer"]') });
  t.equal(await op.count(), 1, 'one POST /infer operation');
  await op.locator('.opblock-summary').first().click();
  // The server's Swagger UI enables "Try it out" up front (the button then reads "Cancel").
  const tryOut = op.locator('button.try-out__btn');
  if (/try it out/i.test(await tryOut.innerText())) await tryOut.click();
  const contentType = op.locator('.body-param-content-type select');
  if ((await contentType.count()) > 0) await contentType.selectOption('application/json');
  const body = op.locator('textarea.body-param__text');
  await body.fill(BODY);
  await op.locator('button.execute').click();

  // the live response row (the table's header row has the same column classes)
  const live = op.locator('.live-responses-table tr.response');
  await live.locator('.response-col_status').waitFor();
  const status = (await live.locator('.response-col_status').innerText()).trim();
  const shown = await live.locator('.response-col_description').innerText();
  t.equal(status, '200', 'the page shows status 200');
  t.match(shown, /"embeddings"/, 'and the response body with "embeddings"');
  t.match(shown, /"model": "demo-embedder"/);
  t.match(await op.locator('.curl-command').innerText(), /-d '\{"model": "demo-embedder", "text": "hello"\}'/, 'and the request it sent');

  const screenshot = join(dir, 'swagger-try-it-out.png');
  // the edited request body at the top, the response below it
  await op.locator('.opblock-section-request-body').evaluate((el) => el.scrollIntoView({ block: 'start' }));
  await page.screenshot({ path: screenshot });
  t.comment(`screenshot: ${screenshot}`);
  if (blocked.length) t.comment(`requests to other hosts were blocked: ${blocked.join(', ')}`);
  t.same(consoleErrors.filter((e) => !/ERR_FAILED|blocked/i.test(e)), [], 'no console errors');
});
