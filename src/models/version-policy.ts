/**
 * Which versions of a model are served, in Triton's words: the latest n, all of them, or
 * specific ones. A model's serving.json may say `"version_policy": {"latest": {"num_versions": 2}}`,
 * `{"all": {}}` or `{"specific": {"versions": [1, 3]}}`; without it, the latest one is served.
 */
import { Type, type Static } from 'typebox';

export const VersionPolicySchema = Type.Union([
  Type.Object({ latest: Type.Object({ num_versions: Type.Integer({ minimum: 1 }) }, { additionalProperties: false }) }, { additionalProperties: false }),
  Type.Object({ all: Type.Object({}, { additionalProperties: false }) }, { additionalProperties: false }),
  Type.Object({ specific: Type.Object({ versions: Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1 }) }, { additionalProperties: false }) }, { additionalProperties: false }),
]);
export type VersionPolicy = Static<typeof VersionPolicySchema>;

export const DEFAULT_VERSION_POLICY: VersionPolicy = { latest: { num_versions: 1 } };

/** The versions the policy serves out of `available` (version numbers as text), oldest first. */
export function servedVersions(policy: VersionPolicy, available: readonly string[]): string[] {
  const sorted = [...available].sort((a, b) => Number(a) - Number(b));
  if ('all' in policy) return sorted;
  if ('latest' in policy) return sorted.slice(Math.max(0, sorted.length - policy.latest.num_versions));
  const wanted = new Set(policy.specific.versions.map(String));
  return sorted.filter((v) => wanted.has(v));
}

export function describePolicy(policy: VersionPolicy): string {
  if ('all' in policy) return 'all';
  if ('latest' in policy) return `latest ${policy.latest.num_versions}`;
  return `specific ${policy.specific.versions.join(', ')}`;
}
