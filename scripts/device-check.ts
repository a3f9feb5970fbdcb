/**
 * Every model of a repository on a device against the same model on the CPU: the outputs
 * must agree within float tolerance. Prints one JSON report; exits 1 on any mismatch.
 *
 * Usage: node dist/scripts/device-check.js MODELS_DIR [DEVICE=cuda]
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

import { readManifest } from '../src/models/manifest.js';
import { type Tensor, TorchScriptModule, runtimeInfo, tensor, toFloat64 } from '../src/runtime/index.js';

const [modelsDir, device = 'cuda'] = process.argv.slice(2);
if (!modelsDir) {
  console.error('usage: device-check MODELS_DIR [DEVICE]');
  process.exit(2);
}

function rand(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const report: Record<string, unknown> = { device, runtime: runtimeInfo() };
let failed = false;
for (const name of readdirSync(modelsDir).filter((n) => !n.startsWith('.')).sort()) {
  let manifest;
  try {
    manifest = await readManifest(join(modelsDir, name));
  } catch {
    continue;
  }
  const r = rand(7);
  const vocab = (manifest.generation as { vocab_size?: number } | undefined)?.vocab_size ?? 100;
  const image = manifest.image as { height?: number; width?: number } | undefined;
  const inputs: Tensor[] = manifest.inputs.map((spec) => {
    const shape = spec.shape.map((d, i) => (d !== -1 ? d : i === 0 ? 2 : spec.shape.length === 4 ? (i === 2 ? image?.height ?? 64 : image?.width ?? 64) : 12));
    const n = shape.reduce((a, b) => a * b, 1);
    if (spec.name === 'attention_mask') return tensor('int64', shape, new Array(n).fill(1));
    if (spec.dtype === 'int64') return tensor('int64', shape, Array.from({ length: n }, () => (spec.name === 'token_type_ids' ? 0 : 5 + Math.floor(r() * (vocab - 5)))));
    return tensor('float32', shape, Array.from({ length: n }, () => r() * 2 - 1));
  });
  const file = join(modelsDir, name, manifest.file);
  const cpu = await TorchScriptModule.load(file, { device: 'cpu' });
  const dev = await TorchScriptModule.load(file, { device });
  const a = await cpu.forward(inputs);
  const b = await dev.forward(inputs);
  const list = (v: unknown) => (Array.isArray(v) ? v : [v]) as Tensor[];
  let maxDiff = 0;
  let scale = 0;
  list(a).forEach((t, i) => {
    const x = toFloat64(t);
    const y = toFloat64(list(b)[i]!);
    for (let j = 0; j < x.length; j++) {
      maxDiff = Math.max(maxDiff, Math.abs(x[j]! - y[j]!));
      scale = Math.max(scale, Math.abs(x[j]!));
    }
  });
  // TF32 convolutions (cuDNN's default) and reordered reductions differ from the CPU by ~1e-3 relative.
  const tolerance = 2e-3 * Math.max(1, scale);
  const ok = maxDiff <= tolerance;
  failed ||= !ok;
  report[name] = { task: manifest.task, device: dev.device, max_abs_diff: maxDiff, tolerance, ok };
  cpu.dispose();
  dev.dispose();
}
console.log(JSON.stringify(report, null, 1));
process.exit(failed ? 1 : 0);
