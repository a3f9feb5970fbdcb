// The measured cost model: least squares on relative error, coefficients never negative.
import t from 'tap';

import { CostModel, fitNonNegative } from '../../src/models/engine/cost-model.js';

const grid = (f: (rows: number, length: number) => number) => {
  const samples = [];
  for (const rows of [1, 2, 4, 8, 16]) for (const length of [8, 16, 32, 64, 128]) samples.push({ rows, length, ms: f(rows, length) });
  return samples;
};

t.test('recovers the coefficients of exact data', async (t) => {
  const fit = fitNonNegative(grid((r, l) => 3 + 0.01 * r * l + 0.0001 * r * l * l))!;
  t.ok(Math.abs(fit[0] - 3) < 1e-6, `fixed ${fit[0]}`);
  t.ok(Math.abs(fit[1] - 0.01) < 1e-8, `per token ${fit[1]}`);
  t.ok(Math.abs(fit[2] - 0.0001) < 1e-10, `per token·length ${fit[2]}`);
});

t.test('a negative coefficient is dropped and the rest refitted', async (t) => {
  // Cost falls slightly with length² (impossible physically, noise in practice): c must be 0.
  const fit = fitNonNegative(grid((r, l) => 2 + 0.02 * r * l - 0.000001 * r * l * l))!;
  t.equal(fit[2], 0);
  t.ok(fit[0] >= 0 && fit[1] > 0);
});

t.test('predicts from calibration, then follows what serving measures', async (t) => {
  const model = new CostModel();
  t.equal(model.predict(4, 10), 40, 'unmeasured: padded tokens');
  t.notOk(model.coefficients.measured);
  model.calibrate(grid((r, l) => 5 + 0.1 * r * l));
  t.ok(model.coefficients.measured);
  t.ok(Math.abs(model.predict(4, 10) - 9) < 1e-6, `calibrated: ${model.predict(4, 10)}`);
  t.ok(Math.abs(model.marginal(10) - 1) < 1e-6);
  // The machine gets twice as slow per token: after enough served batches the fit moves.
  for (let i = 0; i < 256; i++) {
    const rows = 1 + (i % 16);
    const length = 8 + (i % 7) * 16;
    model.observe({ rows, length, ms: 5 + 0.2 * rows * length });
  }
  t.ok(model.marginal(10) > 1.5, `marginal per row of 10 tokens now ${model.marginal(10)}`);
});

t.test('ignores nonsense samples', async (t) => {
  const model = new CostModel();
  model.calibrate([{ rows: 0, length: 8, ms: 1 }, { rows: 1, length: 8, ms: NaN }, { rows: 1, length: 8, ms: -1 }]);
  t.notOk(model.coefficients.measured);
});
