// Many forwards at once each get their own answer, and the event loop keeps running
// while a long forward is on the worker pool.
import t from 'tap';
import { join } from 'node:path';

import { type Tensor, TorchScriptModule, runtimeInfo, tensor } from '../../src/runtime/index.js';
import { pythonFixtures, readJson } from '../helpers/python-fixtures.js';
import { fromJson, type JsonTensor, maxAbsDiff } from '../helpers/tensors.js';

const dir = pythonFixtures('test/fixtures/make_runtime_fixtures.py');
const cases = readJson<{ bert: { inputs: JsonTensor[]; expected: unknown }[] }>(join(dir, 'cases.json'));

t.test('500 concurrent forwards over two modules each return their own result', async (t) => {
  const flip = await TorchScriptModule.load(join(dir, 'flip.pt'));
  const bert = await TorchScriptModule.load(join(dir, 'bert.pt'));
  const jobs: Promise<string | null>[] = [];
  for (let i = 0; i < 500; i++) {
    if (i % 5 === 0) {
      const c = cases.bert[(i / 5) % cases.bert.length]!;
      jobs.push(
        bert.forward(c.inputs.map(fromJson)).then((out) => {
          const diff = maxAbsDiff(out, c.expected);
          return diff <= 1e-5 ? null : `bert job ${i}: diff ${diff}`;
        }),
      );
    } else {
      const n = 1 + (i % 17);
      const values = Array.from({ length: n }, (_, k) => i * 1000 + k);
      jobs.push(
        flip.forward([tensor('float64', [n], values)]).then((out) => {
          const got = Array.from((out as Tensor<'float64'>).data);
          return got.join() === [...values].reverse().join() ? null : `flip job ${i}: got ${got}`;
        }),
      );
    }
  }
  const failures = (await Promise.all(jobs)).filter((f) => f !== null);
  t.same(failures, [], 'every response matches its own request');
});

t.test('a timer keeps firing while a long forward runs', async (t) => {
  const slow = await TorchScriptModule.load(join(dir, 'slow.pt'));
  const x = tensor('float32', [64, 256], new Array(64 * 256).fill(0.01));
  // Size the forward so that it takes well over the timer period.
  let n = 50;
  for (;;) {
    const start = performance.now();
    await slow.forward([x, n]);
    if (performance.now() - start > 400 || n > 1e6) break;
    n *= 2;
  }
  const ticks: number[] = [];
  const timer = setInterval(() => ticks.push(performance.now()), 10);
  const start = performance.now();
  await slow.forward([x, n]);
  const elapsed = performance.now() - start;
  clearInterval(timer);
  // Calibrated to 400 ms; other load on the machine can change between calibration and this run.
  t.ok(elapsed > 150, `forward took ${elapsed.toFixed(0)} ms`);
  // A blocked loop would yield 0 or 1 ticks; a free one about elapsed/10.
  t.ok(ticks.length >= (elapsed / 10) * 0.5, `${ticks.length} ticks in ${elapsed.toFixed(0)} ms`);
  const gaps = ticks.slice(1).map((v, i) => v - ticks[i]!);
  t.ok(Math.max(...gaps) < 100, `longest gap between ticks ${Math.max(...gaps).toFixed(1)} ms`);
});

t.test('an idle runtime does not keep the process alive', async (t) => {
  // If the addon held a ref on the event loop, this child would never exit.
  const { execFileSync } = await import('node:child_process');
  const script = `
    import { TorchScriptModule } from ${JSON.stringify(new URL('../../src/runtime/index.ts', import.meta.url).href)};
    const m = await TorchScriptModule.load(${JSON.stringify(join(dir, 'flip.pt'))});
    await m.forward([{ dtype: 'float32', shape: [1], data: new Float32Array(1) }]);
    console.log('done');`;
  const out = execFileSync(process.execPath, [...process.execArgv, '--input-type=module', '-e', script], {
    timeout: 60_000,
    encoding: 'utf8',
  });
  t.match(out, /done/);
  t.ok(runtimeInfo().workerThreads >= 1);
});

t.test("forward's threads option: one forward on that many intra-op threads, the same answer, bad values refused", async (t) => {
  const bert = await TorchScriptModule.load(join(dir, 'bert.pt'));
  t.teardown(() => bert.dispose());
  const info = runtimeInfo();
  t.equal(typeof info.threadsPerCall, 'boolean');
  const counts = [1, 2, 3, info.intraOpThreads];
  // Interleaved and concurrent, so a worker's setting must not leak into the next forward.
  const jobs = cases.bert.flatMap((c) => counts.map(async (threads) => maxAbsDiff(await bert.forward(c.inputs.map(fromJson), { threads }), c.expected)));
  const plain = cases.bert.map(async (c) => maxAbsDiff(await bert.forward(c.inputs.map(fromJson)), c.expected));
  const diffs = await Promise.all([...jobs, ...plain]);
  t.ok(Math.max(...diffs) <= 1e-5, `every thread count gives transformers' answer (max |diff| ${Math.max(...diffs)})`);
  t.equal(runtimeInfo().intraOpThreads, info.intraOpThreads, 'the process-wide setting is untouched');
  const inputs = cases.bert[0]!.inputs.map(fromJson);
  for (const threads of [0, -1, 1.5, 2000, Number.NaN]) {
    await t.rejects(bert.forward(inputs, { threads }), { code: 'BAD_INPUT', message: /threads must be an integer from 1 to 1024/ }, `threads ${threads}`);
  }
  await t.rejects(bert.forward(inputs, 'x' as never), { code: 'BAD_INPUT', message: /options must be an object/ });
});
