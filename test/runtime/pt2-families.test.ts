// Every task on .pt2 exports over HTTP (PT2_FULL=1: compiling GPT-2 with its past key/values
// module, ViT and YOLOS takes minutes on a small machine, once per change of the exporter).
// Greedy generation equals transformers' generate(do_sample=False), decoding through the .pt2
// past key/values module (continuous batching) or recomputing with model.pt2; image models'
// outputs equal transformers eager on the same pixels, and their task routes answer.
import { join } from 'node:path';

import sharp from 'sharp';
import t from 'tap';

import { pythonFixtures, readJson } from '../helpers/python-fixtures.js';
import { maxDiff, testApp } from '../helpers/server.js';

if (process.env.PT2_FULL !== '1') {
  t.test('every family as .pt2 over HTTP', { skip: 'set PT2_FULL=1 to compile and serve every family as .pt2 (minutes of AOTInductor compiles)' }, () => {});
} else {
  const fixtures = pythonFixtures('test/fixtures/make_pt2_full_fixtures.py', ['exporter', 'test/fixtures/make_pt2_fixtures.py']);
  interface ImageCase {
    pixel_values: number[];
    shape: number[];
    outputs: Record<string, { data: number[]; shape: number[] }>;
  }
  const cases = readJson<{ generation: { prompt: string; max_new_tokens: number; token_ids: number[] }[]; vit: ImageCase[]; yolos: ImageCase[] }>(join(fixtures, 'cases.json'));
  const { app } = await testApp({ MODEL_REPOSITORY: join(fixtures, 'models'), LOAD_MODELS: 'pt2-gpt2,pt2-gpt2-nopast,pt2-vit,pt2-yolos' });
  t.teardown(() => app.close());

  for (const model of ['pt2-gpt2', 'pt2-gpt2-nopast']) {
    t.test(`${model}: greedy generation equals transformers, alone and together`, async (t) => {
      for (const g of cases.generation) {
        const res = await app.inject({ method: 'POST', url: '/infer', payload: { model, text: g.prompt, max_new_tokens: g.max_new_tokens } });
        t.equal(res.statusCode, 200);
        t.same(res.json().token_ids, g.token_ids, `'${g.prompt}'`);
      }
      const together = await Promise.all(cases.generation.map((g) => app.inject({ method: 'POST', url: '/infer', payload: { model, text: g.prompt, max_new_tokens: g.max_new_tokens } })));
      together.forEach((res, i) => t.same(res.json().token_ids, cases.generation[i]!.token_ids, `concurrent '${cases.generation[i]!.prompt}'`));
    });
  }

  for (const [model, family] of [['pt2-vit', 'vit'], ['pt2-yolos', 'yolos']] as const) {
    t.test(`${model}: raw pixels equal transformers eager; the task route answers`, async (t) => {
      for (const c of cases[family]) {
        const res = await app.inject({ method: 'POST', url: '/infer', payload: { model, inputs: [{ name: 'pixel_values', shape: c.shape, datatype: 'FP32', data: c.pixel_values }] } });
        t.equal(res.statusCode, 200, `${c.shape}`);
        for (const out of res.json().outputs as { name: string; shape: number[]; data: number[] }[]) {
          const expected = c.outputs[out.name]!;
          t.same(out.shape, expected.shape);
          t.ok(maxDiff(out.data, expected.data) <= 1e-4, `${out.name} at ${c.shape}: max diff ${maxDiff(out.data, expected.data)}`);
        }
      }
      const image = await sharp({ create: { width: 120, height: 90, channels: 3, background: { r: 200, g: 40, b: 90 } } }).png().toBuffer();
      const res = await app.inject({ method: 'POST', url: '/infer', payload: { model, image: image.toString('base64'), ...(family === 'vit' ? { top_k: 2 } : { threshold: 0 }) } });
      t.equal(res.statusCode, 200);
      t.ok(family === 'vit' ? res.json().labels.length === 2 : res.json().detections.length > 0);
    });
  }

  t.test('pt2-yolos: an image size past the exported bounds is a 400 naming the bound', async (t) => {
    const max = readJson<{ inputs: { max_shape: number[] }[] }>(join(fixtures, 'models', 'pt2-yolos', 'atenspace.json')).inputs[0]!.max_shape;
    const h = max[2]! + 16;
    const res = await app.inject({ method: 'POST', url: '/infer', payload: { model: 'pt2-yolos', inputs: [{ name: 'pixel_values', shape: [1, 3, h, 32], datatype: 'FP32', data: new Array(3 * h * 32).fill(0.5) }] } });
    t.equal(res.statusCode, 400);
    t.match(res.json().error, new RegExp(`dimension 2 \\(${h}\\) is outside the exported bounds 16\\.\\.${max[2]}`));
  });
}
