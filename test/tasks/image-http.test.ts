// Image tasks over HTTP: base64, data URLs and multipart uploads give transformers' answers.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { pythonFixtures, readJson } from '../helpers/python-fixtures.js';
import { testApp } from '../helpers/server.js';

interface Cases {
  vit: Record<string, { top5: { label: string; score: number }[] }>;
  yolos: Record<string, { threshold: number; above: { label: string; score: number; box: Record<string, number> }[] }>;
}
const dir = pythonFixtures('test/fixtures/make_image_fixtures.py', ['exporter']);
const cases = readJson<Cases>(join(dir, 'cases.json'));
const { app } = await testApp({ MODEL_REPOSITORY: join(dir, 'models'), LOAD_MODELS: 'test-vit,test-yolos' });
t.teardown(() => app.close());

function multipart(fields: Record<string, string>, file: Buffer, filename: string): { payload: Buffer; headers: Record<string, string> } {
  const boundary = '----atenspace-test-boundary';
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(fields)) {
    parts.push(Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  }
  parts.push(Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="image"; filename="${filename}"\r\ncontent-type: application/octet-stream\r\n\r\n`));
  parts.push(file, Buffer.from(`\r\n--${boundary}--\r\n`));
  return { payload: Buffer.concat(parts), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

t.test('classification: base64, data URL and multipart all equal transformers top-k', async (t) => {
  const name = 'wide-80x60.png';
  const bytes = readFileSync(join(dir, 'images', name));
  const expected = cases.vit[name]!.top5.slice(0, 3);
  const check = (labels: { label: string; score: number }[], how: string) => {
    t.same(labels.map((l) => l.label), expected.map((l) => l.label), `${how}: labels`);
    labels.forEach((l, i) => t.ok(Math.abs(l.score - expected[i]!.score) <= 1e-4, `${how}: score ${i}`));
  };
  const b64 = await app.inject({ method: 'POST', url: '/infer', payload: { model: 'test-vit', image: bytes.toString('base64'), top_k: 3 } });
  t.equal(b64.statusCode, 200, b64.body.slice(0, 200));
  check(b64.json().labels, 'base64');
  const dataUrl = await app.inject({ method: 'POST', url: '/infer', payload: { model: 'test-vit', image: `data:image/png;base64,${bytes.toString('base64')}`, top_k: 3 } });
  check(dataUrl.json().labels, 'data URL');
  const form = multipart({ model: 'test-vit', top_k: '3' }, bytes, name);
  const upload = await app.inject({ method: 'POST', url: '/infer', ...form });
  t.equal(upload.statusCode, 200, upload.body.slice(0, 200));
  check(upload.json().labels, 'multipart');
});

t.test('detection over HTTP equals post_process_object_detection', async (t) => {
  const name = 'wide-80x60.png';
  const c = cases.yolos[name]!;
  const bytes = readFileSync(join(dir, 'images', name));
  const res = await app.inject({ method: 'POST', url: '/infer', payload: { model: 'test-yolos', image: bytes.toString('base64'), threshold: c.threshold } });
  t.equal(res.statusCode, 200, res.body.slice(0, 200));
  const got = res.json().detections as { label: string; score: number; box: Record<string, number> }[];
  const want = [...c.above].sort((a, b) => b.score - a.score);
  t.equal(got.length, want.length, 'same number of detections');
  got.forEach((d, i) => {
    t.equal(d.label, want[i]!.label);
    t.ok(Math.abs(d.score - want[i]!.score) <= 1e-4, `score ${i}`);
    for (const k of ['xmin', 'ymin', 'xmax', 'ymax']) t.ok(Math.abs(d.box[k]! - want[i]!.box[k]!) <= 1e-3 * 80, `box ${i} ${k}`);
  });
});

t.test('bad images are 400s naming the problem', async (t) => {
  const notImage = await app.inject({ method: 'POST', url: '/infer', payload: { model: 'test-vit', image: Buffer.from('not an image').toString('base64') } });
  t.equal(notImage.statusCode, 400);
  t.equal(notImage.json().code, 'BAD_INPUT');
  t.match(notImage.json().error, /image/i);
  const notBase64 = await app.inject({ method: 'POST', url: '/infer', payload: { model: 'test-vit', image: '%%%' } });
  t.equal(notBase64.statusCode, 400);
  t.match(notBase64.json().error, /base64/);
  const wrongTask = await app.inject({ method: 'POST', url: '/infer', payload: { model: 'test-vit', text: 'hello' } });
  t.equal(wrongTask.statusCode, 400);
  t.match(wrongTask.json().error, /'text'.*image-classification model/);
  const badThreshold = await app.inject({ method: 'POST', url: '/infer', payload: { model: 'test-yolos', image: 'aGk=', threshold: 2 } });
  t.equal(badThreshold.statusCode, 400);
});
