/** KServe v2 model metadata, as HTTP (`GET /v2/models/:name[/versions/:version]`) and gRPC (`ModelMetadata`) answer it. */
import type { ServerContext } from './context.js';
import { describeModel } from './describe-model.js';

/** KServe's free-form `platform`: what runs the model (a TorchScript module, or an AOTInductor package). */
export const platformOf = (format: 'torchscript' | 'pt2' | undefined): string => (format === 'pt2' ? 'pytorch_aoti' : 'pytorch_torchscript');

/** The model's name, its served versions (or the one asked for), platform, inputs and outputs. */
export async function modelMetadata(ctx: ServerContext, name: string, version?: string) {
  const entry = await ctx.registry.find(name, version);
  const d = describeModel(entry, ctx.registry, ctx.config.device);
  const versions = version === undefined ? ctx.registry.versionsOf(name).filter((v) => v.served).map((v) => v.entry.version) : [entry.version];
  return { name, versions, platform: platformOf(entry.manifest?.model_format), inputs: d.inputs, outputs: d.outputs };
}
