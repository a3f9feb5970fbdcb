/**
 * The event loop's max delay (monitorEventLoopDelay, 1 ms resolution) while a 40-megapixel image
 * is classified over HTTP: the server in this process (demo-vit from the test fixtures), the
 * image posted as multipart by fetch. For comparison, the same preprocessing done on the event
 * loop in chunks of rows (resizeRgbAsync, as before issue 16).
 *
 * Usage: node dist/bench/atomspace/image-loop-delay.js MODEL_REPOSITORY [WIDTH=8000] [HEIGHT=5000]
 */
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';

import sharp from 'sharp';

import { decodeImage, imageSpec, resizeRgbAsync, toPixelValues, outputSize } from '../../src/models/tasks/image-preprocess.js';
import { buildApp } from '../../src/server/app.js';
import { loadConfig } from '../../src/server/config.js';

const [repository, wArg, hArg] = process.argv.slice(2);
const W = Number(wArg ?? 8000);
const H = Number(hArg ?? 5000);
const dataDir = mkdtempSync(join(tmpdir(), 'image-delay-'));
const config = loadConfig({ MODEL_REPOSITORY: repository!, LOAD_MODELS: 'demo-vit', LOG_LEVEL: 'warn', DATA_DIR: dataDir, DEVICE: 'cpu' }, []);
const { app, context, loadStartupModels } = await buildApp(config, { logger: false });
await loadStartupModels();
await app.listen({ port: 0, host: '127.0.0.1' });
const port = (app.server.address() as AddressInfo).port;

// A smooth 40 MP picture (JPEG), so that it stays under MAX_IMAGE_BYTES.
const raw = Buffer.alloc(W * H * 3);
for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) raw.set([(x * 255) / W, (y * 255) / H, ((x + y) * 127) / (W + H)], (y * W + x) * 3);
const jpeg = await sharp(raw, { raw: { width: W, height: H, channels: 3 } }).jpeg({ quality: 80 }).toBuffer();

async function watched(what: string, run: () => Promise<unknown>) {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const t0 = performance.now();
  await run();
  const ms = performance.now() - t0;
  delay.disable();
  return { what, ms: +ms.toFixed(0), max_delay_ms: +(delay.max / 1e6).toFixed(1), p99_delay_ms: +(delay.percentile(99) / 1e6).toFixed(1) };
}

const results = [];
for (let round = 0; round < 3; round++) {
  results.push(
    await watched('POST /infer (multipart), preprocessing on a worker thread', async () => {
      const form = new FormData();
      form.append('model', 'demo-vit');
      form.append('image', new Blob([jpeg], { type: 'image/jpeg' }), 'big.jpg');
      const res = await fetch(`http://127.0.0.1:${port}/infer`, { method: 'POST', body: form });
      if (res.status !== 200) throw new Error(`${res.status} ${await res.text()}`);
      await res.json();
    }),
  );
  const spec = imageSpec(context.registry.get('demo-vit')!.manifest!);
  results.push(
    await watched('the same preprocessing on the event loop (resizeRgbAsync, chunks of rows)', async () => {
      const decoded = await decodeImage(jpeg);
      const [oh, ow] = outputSize(decoded.height, decoded.width, spec);
      toPixelValues(await resizeRgbAsync(decoded, oh, ow, spec.resample), spec);
    }),
  );
}
console.log(JSON.stringify({ image: `${W}x${H} JPEG, ${(jpeg.length / 2 ** 20).toFixed(1)} MiB`, model: 'demo-vit', results }, null, 1));
await app.close();
rmSync(dataDir, { recursive: true, force: true });
