// deploy/kubernetes/, checked against the Kubernetes API schemas and against the server:
//  - every manifest validates with kubernetes-models (core, apps, policy, autoscaling),
//    @kubernetes-models/prometheus-operator (ServiceMonitor) and @kubernetes-models/keda
//    (ScaledObject); the KServe resources against the schema transcribed from KServe's API types
//    (test/helpers/kserve-schema.ts), their containers with kubernetes-models; the GPU overlay is
//    applied as kustomize would (RFC 6902, fast-json-patch) and its Deployment validated too;
//  - every port, path, environment variable and metric name they mention exists in the server:
//    ports against the settings the server reads from the manifest's own env, probe paths against
//    the routes of an app built from src/ (and they answer 200), env names against the server's
//    settings, metric and label names against a live /metrics scrape, PromQL with promtool.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';

import { Ajv } from 'ajv';
import jsonPatch from 'fast-json-patch';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Container } from 'kubernetes-models/v1/Container';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Service } from 'kubernetes-models/v1/Service';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { parse as parseYaml, parseAllDocuments } from 'yaml';

import { describeSettings, loadConfig } from '../../src/server/config.js';
import { readRepo, repoRoot, systemBinary } from '../helpers/deploy.js';
import { CONTAINER_FIELDS, clusterServingRuntimeSchema, inferenceServiceSchema } from '../helpers/kserve-schema.js';
import { embedderRequest, serverFixtures, testApp } from '../helpers/server.js';

const DIR = 'deploy/kubernetes';
const SETTINGS = new Set(describeSettings().map((s) => s.env));

interface Manifest {
  file: string;
  doc: any;
}

/** Every YAML file under deploy/kubernetes, relative to it. */
function yamlFiles(): string[] {
  return (readdirSync(join(repoRoot, DIR), { recursive: true, encoding: 'utf8' }) as string[]).filter((f) => f.endsWith('.yaml')).sort();
}

const isKustomization = (file: string) => posix.basename(file) === 'kustomization.yaml';
const isPatch = (file: string) => /-patch\.yaml$/.test(file);

function manifests(): Manifest[] {
  return yamlFiles()
    .filter((f) => !isKustomization(f) && !isPatch(f))
    .flatMap((file) =>
      parseAllDocuments(readRepo(`${DIR}/${file}`)).map((d) => {
        if (d.errors.length) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
        return { file, doc: d.toJS() };
      }),
    );
}

const ajv = new Ajv({ allErrors: true, strict: false });
const validateCsr = ajv.compile(clusterServingRuntimeSchema);
const validateIsvc = ajv.compile(inferenceServiceSchema);

/** Validate one object; throws with the validator's message. */
function validate(doc: any): void {
  const models: Record<string, new (d: any) => { validate(): void }> = {
    'apps/v1/Deployment': Deployment,
    'v1/Service': Service,
    'v1/ConfigMap': ConfigMap,
    'v1/PersistentVolumeClaim': PersistentVolumeClaim,
    'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
    'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
    'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
    'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  };
  const key = `${doc.apiVersion}/${doc.kind}`;
  if (models[key]) return new models[key]!(doc).validate();
  const kserve = key === 'serving.kserve.io/v1alpha1/ClusterServingRuntime' ? validateCsr : key === 'serving.kserve.io/v1beta1/InferenceService' ? validateIsvc : undefined;
  if (!kserve) throw new Error(`no validator for ${key}`);
  if (!kserve(doc)) throw new Error(ajv.errorsText(kserve.errors));
  const spec = (doc as { spec: any }).spec;
  for (const c of spec.containers ?? []) new Container(c).validate();
  const model = spec.predictor?.model;
  if (model) {
    const container = Object.fromEntries(Object.entries(model).filter(([k]) => CONTAINER_FIELDS.includes(k)));
    new Container({ name: 'kserve-container', ...container }).validate();
  }
}

const all = manifests();
const find = (kind: string, file?: string) => {
  const m = all.find((x) => x.doc.kind === kind && (!file || x.file === file));
  if (!m) throw new Error(`no ${kind}${file ? ` in ${file}` : ''} under ${DIR}`);
  return m.doc;
};
const gpuDeployment = () => {
  const patch = parseYaml(readRepo(`${DIR}/gpu/deployment-patch.yaml`));
  return jsonPatch.applyPatch(structuredClone(find('Deployment', 'deployment.yaml')), patch, true, false).newDocument;
};

t.test('every manifest validates against the Kubernetes / CRD schemas', async (t) => {
  t.ok(all.length >= 10, `${all.length} objects in ${yamlFiles().length} files`);
  for (const { file, doc } of all) {
    t.doesNotThrow(() => validate(doc), `${file}: ${doc.apiVersion} ${doc.kind} ${doc.metadata?.name}`);
    t.match(doc.metadata?.name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, `${file}: the name is a DNS label`);
  }
  t.doesNotThrow(() => validate(gpuDeployment()), 'gpu/: the patched Deployment validates');
});

t.test('the validators do catch mistakes', async (t) => {
  const deployment = structuredClone(find('Deployment'));
  deployment.spec.template.spec.containers[0].ports[0].containerPort = 'eighty';
  t.throws(() => validate(deployment), /containerPort must be integer/, 'Deployment: a port that is not a number');
  const hpa = structuredClone(find('HorizontalPodAutoscaler'));
  hpa.spec.minReplicas = 'two';
  t.throws(() => validate(hpa), /minReplicas/, 'HPA: a replica count that is not a number');
  const scaled = structuredClone(find('ScaledObject'));
  delete scaled.spec.triggers;
  t.throws(() => validate(scaled), /triggers/, 'ScaledObject: no triggers');
  const monitor = structuredClone(find('ServiceMonitor'));
  monitor.spec.endpoints[0].interval = 'often';
  t.throws(() => validate(monitor), 'ServiceMonitor: an interval that is not a duration');
  const runtime = structuredClone(find('ClusterServingRuntime'));
  runtime.spec.protocolVersions = ['v3'];
  t.throws(() => validate(runtime), /protocolVersions/, 'ClusterServingRuntime: an unknown protocol');
  const runtime2 = structuredClone(find('ClusterServingRuntime'));
  runtime2.spec.suportedModelFormats = runtime2.spec.supportedModelFormats;
  t.throws(() => validate(runtime2), /additional properties/, 'ClusterServingRuntime: a misspelt field');
  const isvc = structuredClone(find('InferenceService'));
  isvc.spec.predictor.model.resources = { limits: { cpu: [2] } };
  t.throws(() => validate(isvc), 'InferenceService: a bad resource quantity in the model container');
});

t.test('kustomizations: their resources and patches exist; one autoscaler at a time', async (t) => {
  for (const file of yamlFiles().filter(isKustomization)) {
    const k = parseYaml(readRepo(`${DIR}/${file}`));
    t.equal(k.apiVersion, 'kustomize.config.k8s.io/v1beta1', `${file}: a Kustomization`);
    for (const r of k.resources ?? []) {
      const path = posix.normalize(posix.join(DIR, dirname(file), r));
      t.ok(r === '..' ? yamlFiles().includes(posix.join(posix.relative(DIR, path), 'kustomization.yaml')) : yamlFiles().includes(posix.relative(DIR, path)), `${file}: resource ${r} exists`);
    }
    for (const p of k.patches ?? []) t.ok(yamlFiles().includes(posix.join(dirname(file), p.path)), `${file}: patch ${p.path} exists`);
  }
  const base = parseYaml(readRepo(`${DIR}/kustomization.yaml`));
  const listed = new Set(base.resources);
  for (const { file, doc } of all.filter((m) => !m.file.includes('/'))) t.ok(listed.has(file), `${file} (${doc.kind}) is in the base kustomization`);
  t.notOk(base.resources.some((r: string) => r.startsWith('autoscaling/')), 'the HPA and the ScaledObject are applied by choice, not both by the base');

  const gpu = gpuDeployment();
  const container = gpu.spec.template.spec.containers[0];
  t.equal(container.resources.limits['nvidia.com/gpu'], 1, 'gpu/: one nvidia.com/gpu per pod');
  t.equal(container.env.find((e: any) => e.name === 'DEVICE').value, 'cuda', 'gpu/: DEVICE=cuda');
  t.match(container.image, /:cuda$/, 'gpu/: the CUDA image (docker-compose.yml\'s atenspace-serve:cuda)');
  t.ok(gpu.spec.template.spec.tolerations.some((x: any) => x.key === 'nvidia.com/gpu'), 'gpu/: tolerates GPU nodes\' taint');
  t.ok(readRepo('docker-compose.yml').includes(`image: ${container.image}`), `${container.image} is the image compose builds`);
});

t.test('ports, paths, settings and metrics exist in the server', { timeout: 180_000 }, async (t) => {
  const { app } = await testApp({ LOAD_MODELS: 'demo-embedder' });
  t.teardown(() => app.close());
  const inferred = await app.inject({ method: 'POST', url: '/infer', payload: embedderRequest([2, 15, 27, 3]) });
  t.equal(inferred.statusCode, 200, 'one inference, so that per-model series exist');
  const exposition = (await app.inject('/metrics')).body;
  const seriesLabels = (metric: string): Set<string> => {
    const labels = new Set<string>();
    for (const line of exposition.split('\n')) {
      const m = new RegExp(`^${metric}\\{([^}]*)\\}`).exec(line);
      if (m) for (const pair of m[1]!.matchAll(/(\w+)="/g)) labels.add(pair[1]!);
    }
    return labels;
  };
  const getAnswers = async (path: string) => {
    t.ok(app.hasRoute({ method: 'GET', url: path }), `GET ${path} is a route of the server`);
    const res = await app.inject({ method: 'GET', url: path });
    t.equal(res.statusCode, 200, `GET ${path} answers 200 once ready (${res.body.slice(0, 100)})`);
  };

  /** Env of a container as the server sees it: plain values, and samples for the secret ones. */
  const envOf = (container: any, name: string) => {
    const env: Record<string, string> = {};
    for (const e of container.env ?? []) {
      t.ok(SETTINGS.has(e.name), `${name}: env ${e.name} is a server setting`);
      if (e.value !== undefined) env[e.name] = e.value;
      else if (e.name === 'DATABASE_URL') env[e.name] = 'postgres://u:p@db:5432/atenspace';
      else t.fail(`${name}: env ${e.name} comes from ${JSON.stringify(e.valueFrom)}, with no sample here`);
    }
    t.doesNotThrow(() => loadConfig(env, []), `${name}: the server accepts these settings`);
    return loadConfig(env, []);
  };
  const probes = async (container: any, name: string, ports: Map<string, number>, configPort: number) => {
    for (const kind of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
      const probe = container[kind];
      if (!probe) continue;
      const port = typeof probe.httpGet.port === 'string' ? ports.get(probe.httpGet.port) : probe.httpGet.port;
      t.equal(port, configPort, `${name}: ${kind} probes the server's PORT`);
      await getAnswers(probe.httpGet.path);
    }
  };

  // The Deployment and its Service, PDB and ServiceMonitor.
  const deployment = find('Deployment');
  const pod = deployment.spec.template;
  const [server] = pod.spec.containers;
  const config = envOf(server, 'Deployment');
  t.equal(config.atomspaceStore, 'postgres', 'replicas share the AtomSpace in PostgreSQL');
  const ports = new Map<string, number>(server.ports.map((p: any) => [p.name, p.containerPort]));
  t.same([...ports.entries()], [['http', config.port], ['grpc', config.grpcPort]], `the container ports are the server's PORT (${config.port}) and GRPC_PORT (${config.grpcPort})`);
  t.ok(server.readinessProbe && server.livenessProbe && server.startupProbe, 'startup, readiness and liveness probes');
  t.equal(server.readinessProbe.httpGet.path, '/health/ready', 'readiness is /health/ready');
  t.equal(server.livenessProbe.httpGet.path, '/health/live', 'liveness is /health/live');
  await probes(server, 'Deployment', ports, config.port);
  t.ok(server.resources.requests.cpu && server.resources.requests.memory && server.resources.limits.memory, 'CPU and memory requests, a memory limit');
  t.equal(String(Number(server.resources.requests.cpu)), env(server, 'INTRA_OP_THREADS'), 'LibTorch threads = the CPUs requested');
  const mounts = new Map<string, string>(server.volumeMounts.map((m: any) => [m.mountPath, m.name]));
  t.ok(mounts.has(config.modelRepository), `MODEL_REPOSITORY ${config.modelRepository} is a mounted volume`);
  t.ok(mounts.has(config.dataDir), `DATA_DIR ${config.dataDir} is a mounted volume`);
  const models = pod.spec.volumes.find((v: any) => v.name === mounts.get(config.modelRepository));
  t.equal(models.persistentVolumeClaim?.claimName, find('PersistentVolumeClaim').metadata.name, 'the model repository is the PVC');
  t.equal(pod.spec.securityContext.runAsUser, 10001, 'runs as the image\'s user (uid 10001)');
  t.match(readRepo('Dockerfile'), /useradd --uid 10001/, 'which the Dockerfile creates');
  t.ok(pod.spec.terminationGracePeriodSeconds > 30, 'the grace period covers the server\'s drain');

  const labels = pod.metadata.labels;
  const matches = (selector: Record<string, string>, on: Record<string, string>) => Object.entries(selector).every(([k, v]) => on[k] === v);
  t.same(deployment.spec.selector.matchLabels, labels, 'the Deployment selects its pods');
  const service = find('Service');
  t.ok(matches(service.spec.selector, labels), 'the Service selects the pods');
  for (const p of service.spec.ports) {
    const want = p.name === 'grpc' ? config.grpcPort : config.port;
    t.equal(typeof p.targetPort === 'string' ? ports.get(p.targetPort) : p.targetPort, want, `Service port ${p.name} reaches the server`);
  }
  t.ok(matches(find('PodDisruptionBudget').spec.selector.matchLabels, labels), 'the PDB covers the pods');
  t.ok(find('PodDisruptionBudget').spec.minAvailable < deployment.spec.replicas, 'and lets one go at a time');
  const monitor = find('ServiceMonitor');
  t.ok(matches(monitor.spec.selector.matchLabels, service.metadata.labels), 'the ServiceMonitor selects the Service');
  for (const e of monitor.spec.endpoints) {
    t.ok(service.spec.ports.some((p: any) => p.name === e.port), `ServiceMonitor port ${e.port} is a Service port`);
    await getAnswers(e.path);
  }

  // Autoscaling: HPA (prometheus-adapter) and KEDA on the server's per-model gauges.
  const adapterRules = parseYaml(find('ConfigMap').data['config.yaml']).rules as any[];
  const adapterNames = new Map<string, any>(adapterRules.map((r) => [r.name.as, r]));
  const promql: string[] = [];
  for (const rule of adapterRules) {
    const metric = /^(\w+)\{/.exec(rule.seriesQuery)?.[1]!;
    t.match(exposition, new RegExp(`^# TYPE ${metric} gauge$`, 'm'), `adapter rule: ${metric} is a gauge the server exports`);
    t.ok(seriesLabels(metric).has('model'), `${metric} has the model label`);
    t.ok(new RegExp(rule.name.matches).test(metric), `adapter rule: name.matches covers ${metric}`);
    promql.push(rule.metricsQuery.replaceAll('<<.Series>>', metric).replaceAll('<<.LabelMatchers>>', 'namespace="atenspace",pod=~"atenspace-.*",model="demo-embedder"').replaceAll('<<.GroupBy>>', 'pod'));
  }
  const hpa = find('HorizontalPodAutoscaler');
  t.same(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name }, 'the HPA scales the Deployment');
  for (const m of hpa.spec.metrics) {
    t.ok(adapterNames.has(m.pods.metric.name), `HPA metric ${m.pods.metric.name} is made by a prometheus-adapter rule`);
    for (const label of Object.keys(m.pods.metric.selector?.matchLabels ?? {})) t.ok(seriesLabels(m.pods.metric.name).has(label), `HPA selector label ${label} is a label of ${m.pods.metric.name}`);
  }
  const keda = find('ScaledObject');
  t.equal(keda.spec.scaleTargetRef.name, deployment.metadata.name, 'KEDA scales the Deployment');
  for (const trigger of keda.spec.triggers) {
    t.equal(trigger.type, 'prometheus');
    const query = trigger.metadata.query as string;
    promql.push(query);
    for (const metric of new Set([...query.matchAll(/\b(atenspace_\w+)/g)].map((m) => m[1]!))) t.match(exposition, new RegExp(`^# TYPE ${metric} `, 'm'), `KEDA query: ${metric} is a server metric`);
    for (const label of [...query.matchAll(/(\w+)=~?"/g)].map((m) => m[1]!)) {
      t.ok(label === 'job' || label === 'namespace' || seriesLabels(/atenspace_\w+/.exec(query)![0]).has(label), `KEDA query: label ${label} is the server's or Prometheus' (job)`);
    }
    const job = /job="([^"]+)"/.exec(query)?.[1];
    if (job) t.equal(job, service.metadata.name, 'the job label the ServiceMonitor gives is the Service name');
    t.ok(Number(trigger.metadata.threshold) > 0, 'a positive threshold');
  }
  const promtool = systemBinary('/usr/bin/promtool');
  if (promtool.skip) t.pass('promtool check rules', { skip: promtool.skip });
  else {
    const dir = mkdtempSync(join(tmpdir(), 'atenspace-promql-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const rules = { groups: [{ name: 'k8s-autoscaling', rules: promql.map((expr, i) => ({ record: `atenspace:autoscaling:${i}`, expr })) }] };
    writeFileSync(join(dir, 'rules.yml'), JSON.stringify(rules));
    const res = spawnSync(promtool.path, ['check', 'rules', join(dir, 'rules.yml')], { encoding: 'utf8' });
    t.equal(res.status, 0, `promtool parses every autoscaling query (${promql.length}): ${res.stdout}${res.stderr}`);
    writeFileSync(join(dir, 'bad.yml'), JSON.stringify({ groups: [{ name: 'x', rules: [{ record: 'x:y', expr: 'sum(atenspace_queue_depth{' }] }] }));
    t.not(spawnSync(promtool.path, ['check', 'rules', join(dir, 'bad.yml')]).status, 0, 'and rejects a broken one');
  }

  // KServe: the runtime serves the v2 protocol from /mnt/models.
  const runtime = find('ClusterServingRuntime');
  const [kc] = runtime.spec.containers;
  const kconfig = envOf(kc, 'ClusterServingRuntime');
  t.equal(kconfig.modelRepository, '/mnt/models', 'MODEL_REPOSITORY is KServe\'s /mnt/models');
  t.same(kc.ports.map((p: any) => p.containerPort), [kconfig.port], 'the container port is the server\'s PORT');
  await probes(kc, 'ClusterServingRuntime', new Map(), kconfig.port);
  t.equal(runtime.spec.annotations['prometheus.kserve.io/port'], String(kconfig.port), 'KServe\'s Prometheus annotation: the server\'s port');
  await getAnswers(runtime.spec.annotations['prometheus.kserve.io/path']);
  t.ok(runtime.spec.protocolVersions.includes('v2'), 'protocol v2');
  for (const route of ['/v2/models/:name/infer']) t.ok(app.hasRoute({ method: 'POST', url: route }), `POST ${route} is served`);
  for (const route of ['/v2/models/:name', '/v2/models/:name/ready', '/v2/health/live', '/v2/health/ready']) t.ok(app.hasRoute({ method: 'GET', url: route }), `GET ${route} is served`);
  const formats = runtime.spec.supportedModelFormats.map((f: any) => f.name);
  t.ok(formats.includes('pytorch') && formats.includes('torchscript'), `model formats ${formats.join(', ')}`);
  const meta = await app.inject('/v2/models/demo-embedder');
  t.equal(meta.json().platform, 'pytorch_torchscript', 'the server says pytorch_torchscript in its v2 model metadata');
  t.ok(readRepo('docker-compose.yml').includes(`image: ${kc.image}`), `${kc.image} is the image compose builds`);

  const isvc = find('InferenceService');
  const model = isvc.spec.predictor.model;
  t.equal(model.runtime, runtime.metadata.name, 'the InferenceService runs on the ClusterServingRuntime');
  t.ok(formats.includes(model.modelFormat.name), `its format ${model.modelFormat.name} is one the runtime supports`);
  t.ok(runtime.spec.protocolVersions.includes(model.protocolVersion), `its protocol ${model.protocolVersion} is the runtime's`);
  const iconfig = envOf({ env: [...kc.env.filter((e: any) => !model.env?.some((m: any) => m.name === e.name)), ...(model.env ?? [])] }, 'InferenceService');
  t.same(iconfig.loadModels, [isvc.metadata.name], 'it loads the model it is named after (its v2 URL names it)');
  const repository = readdirSync(join(serverFixtures(), 'models'));
  t.ok(repository.includes(isvc.metadata.name), `${isvc.metadata.name} is a model of the (test) repository`);
  t.equal(model.storageUri.replace(/^pvc:\/\/([^/]+).*/, '$1'), find('PersistentVolumeClaim').metadata.name, 'its storageUri is the model repository PVC');
  const infer = await app.inject({ method: 'POST', url: `/v2/models/${isvc.metadata.name}/infer`, payload: { inputs: embedderRequest([2, 15, 27, 3]).inputs } });
  t.equal(infer.statusCode, 200, `POST /v2/models/${isvc.metadata.name}/infer answers`);
});

function env(container: any, name: string): string | undefined {
  return container.env.find((e: any) => e.name === name)?.value;
}
