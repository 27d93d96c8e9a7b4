// Offline checks of the Kubernetes manifests (deploy/k8s): every overlay renders with
// `kubectl kustomize`, every object validates against the Kubernetes API schemas
// (kubernetes-models, plus the Prometheus Operator and KEDA CRD schemas) with unknown
// fields rejected, and the deployment properties the service relies on hold.
//
//   node --test tests/deploy/check-manifests.js
// Environment: ONEREWARD_SOURCE_DIR (repository root; default: two levels up),
// KUBECTL (default: kubectl), KUSTOMIZE_OUT (a directory: the rendered overlays are
// written there for inspection). Modules come from NODE_PATH (tests/deploy/CMakeLists.txt
// installs them with `npm ci` into the build tree).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const YAML = require('yaml');

const ROOT = process.env.ONEREWARD_SOURCE_DIR || path.resolve(__dirname, '..', '..');
const KUBECTL = process.env.KUBECTL || 'kubectl';
const K8S = path.join(ROOT, 'deploy', 'k8s');
const OVERLAYS = ['gpu', 'cpu-dev'];
const GRPC_PORT = 50051;
const METRICS_PORT = 9090;
const DEFAULT_DRAIN_GRACE_S = 180; // the server's --drain-grace default
const GPU = 'nvidia.com/gpu';

// ----------------------------------------------------------------------------------------
// Schema validation

// apiVersion -> module holding the model classes of that group/version.
function modelModule(apiVersion) {
  if (apiVersion.startsWith('monitoring.coreos.com/')) {
    return `@kubernetes-models/prometheus-operator/${apiVersion}`;
  }
  if (apiVersion.startsWith('keda.sh/')) return `@kubernetes-models/keda/${apiVersion}`;
  return `kubernetes-models/${apiVersion}`;
}

function modelClass(obj) {
  let mod;
  try {
    mod = require(modelModule(obj.apiVersion));
  } catch (e) {
    throw new Error(`${describe(obj)}: no schema for apiVersion ${obj.apiVersion}`);
  }
  const cls = mod[obj.kind];
  if (!cls || typeof cls.prototype.validate !== 'function') {
    throw new Error(`${describe(obj)}: no schema for kind ${obj.kind} in ${obj.apiVersion}`);
  }
  return cls;
}

// The schemas' validators read every property the schema defines (and iterate free-form
// maps). Wrapping the object in proxies that record reads shows the properties the schema
// never looked at: fields the API server would reject (or, with lenient validation, drop
// silently). An object none of whose properties was read is free-form
// (x-kubernetes-preserve-unknown-fields) and is not checked.
function trackReads(value, reads) {
  if (value === null || typeof value !== 'object') return value;
  const seen = new Set();
  reads.push({ target: value, seen });
  const proxies = new Map();
  return new Proxy(value, {
    get(target, prop, receiver) {
      if (typeof prop === 'string') seen.add(prop);
      const v = Reflect.get(target, prop, receiver);
      if (v === null || typeof v !== 'object') return v;
      if (!proxies.has(prop)) proxies.set(prop, trackReads(v, reads));
      return proxies.get(prop);
    },
  });
}

function unknownFields(root, reads) {
  const unknown = [];
  const paths = new Map([[root, '']]);
  const walk = (v, p) => {
    if (v === null || typeof v !== 'object') return;
    paths.set(v, p);
    for (const [k, c] of Object.entries(v)) walk(c, Array.isArray(v) ? `${p}[${k}]` : `${p}.${k}`);
  };
  walk(root, '');
  for (const { target, seen } of reads) {
    if (Array.isArray(target) || seen.size === 0) continue;
    for (const key of Object.keys(target)) {
      if (!seen.has(key)) unknown.push(`${paths.get(target) || ''}.${key}`.replace(/^\./, ''));
    }
  }
  return unknown;
}

function validateObject(obj) {
  const cls = modelClass(obj);
  const reads = [];
  const data = JSON.parse(JSON.stringify(obj));
  try {
    cls.prototype.validate.call(trackReads(data, reads));
  } catch (e) {
    throw new Error(`${describe(obj)}: ${e.message}`);
  }
  const unknown = unknownFields(data, reads);
  if (unknown.length) throw new Error(`${describe(obj)}: unknown field(s) ${unknown.join(', ')}`);
}

// ----------------------------------------------------------------------------------------
// Rendering and lookups

function describe(obj) {
  return `${obj.kind}/${(obj.metadata && obj.metadata.name) || '?'}`;
}

const rendered = new Map();
function render(overlay) {
  if (!rendered.has(overlay)) {
    const out = execFileSync(KUBECTL, ['kustomize', path.join(K8S, 'overlays', overlay)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 64 << 20,
    });
    if (process.env.KUSTOMIZE_OUT) {
      fs.mkdirSync(process.env.KUSTOMIZE_OUT, { recursive: true });
      fs.writeFileSync(path.join(process.env.KUSTOMIZE_OUT, `${overlay}.yaml`), out);
    }
    const docs = YAML.parseAllDocuments(out);
    for (const d of docs) if (d.errors.length) throw d.errors[0];
    rendered.set(overlay, docs.map((d) => d.toJS()).filter((o) => o !== null));
  }
  return rendered.get(overlay);
}

function all(objs, kind) {
  return objs.filter((o) => o.kind === kind);
}
function one(objs, kind, name) {
  const found = objs.filter((o) => o.kind === kind && (!name || o.metadata.name === name));
  assert.equal(found.length, 1, `expected one ${kind}${name ? `/${name}` : ''}, found ${found.length}`);
  return found[0];
}
function matches(selector, labels) {
  return Object.entries(selector || {}).every(([k, v]) => labels && labels[k] === v);
}
function server(objs) {
  const dep = one(objs, 'Deployment', 'onereward');
  const c = dep.spec.template.spec.containers.find((x) => x.name === 'server');
  assert.ok(c, 'Deployment has a container named server');
  return { dep, pod: dep.spec.template.spec, c };
}
// The server's --config file, from the ConfigMap mounted where ONEREWARD_CONFIG points.
function serverConfig(objs) {
  const { pod, c } = server(objs);
  const env = Object.fromEntries((c.env || []).map((e) => [e.name, e.value]));
  const file = env.ONEREWARD_CONFIG;
  assert.ok(file, 'ONEREWARD_CONFIG is set');
  const mount = (c.volumeMounts || []).find((m) => file.startsWith(`${m.mountPath}/`));
  assert.ok(mount, `a volume is mounted above ${file}`);
  const vol = pod.volumes.find((v) => v.name === mount.name);
  assert.ok(vol && vol.configMap, `${file} comes from a ConfigMap`);
  const cm = one(objs, 'ConfigMap', vol.configMap.name);
  const key = path.posix.relative(mount.mountPath, file);
  assert.ok(cm.data && cm.data[key] !== undefined, `ConfigMap ${cm.metadata.name} has ${key}`);
  return JSON.parse(cm.data[key]);
}
function portOf(listen) {
  return Number(String(listen).split(':').pop());
}
function preStopSeconds(c) {
  const h = c.lifecycle && c.lifecycle.preStop;
  assert.ok(h, 'the server container has a preStop hook');
  if (h.sleep) return Number(h.sleep.seconds);
  assert.ok(h.exec && h.exec.command, 'preStop is an exec or sleep handler');
  const cmd = h.exec.command;
  assert.equal(path.posix.basename(cmd[0]), 'sleep', `preStop runs sleep, not ${cmd.join(' ')}`);
  return Number(cmd[1]);
}

// ----------------------------------------------------------------------------------------
// Tests

test('the schema check rejects unknown fields and bad types', () => {
  const bad = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'x' },
    spec: {
      selector: { matchLabels: { a: 'b' } },
      template: {
        metadata: { labels: { a: 'b' } },
        spec: { containers: [{ name: 'c', image: 'i', readinesProbe: { grpc: { port: 1 } } }] },
      },
    },
  };
  assert.throws(() => validateObject(bad), /unknown field.*containers\[0\]\.readinesProbe/);
  const badType = JSON.parse(JSON.stringify(bad));
  delete badType.spec.template.spec.containers[0].readinesProbe;
  badType.spec.template.spec.containers[0].ports = [{ containerPort: 'grpc' }];
  assert.throws(() => validateObject(badType), /containerPort must be integer/);
  delete badType.spec.template.spec.containers[0].ports;
  validateObject(badType); // free-form maps (labels) pass
  assert.throws(() => validateObject({ apiVersion: 'example.com/v1', kind: 'X', metadata: { name: 'x' } }),
    /no schema/);
});

for (const overlay of OVERLAYS) {
  test(`${overlay}: renders and every object matches the Kubernetes API schemas`, () => {
    const objs = render(overlay);
    assert.ok(objs.length > 5, 'renders the objects');
    const errors = [];
    for (const obj of objs) {
      try {
        validateObject(obj);
      } catch (e) {
        errors.push(e.message);
      }
    }
    assert.deepEqual(errors, [], errors.join('\n'));
    const names = objs.map((o) => `${o.kind}/${o.metadata.name}`);
    assert.equal(new Set(names).size, names.length, `no duplicates: ${names.join(', ')}`);
  });

  test(`${overlay}: one namespace for everything, and the Namespace object`, () => {
    const objs = render(overlay);
    const ns = one(objs, 'Namespace');
    for (const o of objs) {
      if (o.kind === 'Namespace') continue;
      assert.equal(o.metadata.namespace, ns.metadata.name, `${describe(o)} is in ${ns.metadata.name}`);
    }
  });

  test(`${overlay}: gRPC probes: startup and liveness on the overall service, readiness on ImageFill`, () => {
    const objs = render(overlay);
    const { c } = server(objs);
    const grpcPort = (c.ports || []).find((p) => p.name === 'grpc');
    const metricsPort = (c.ports || []).find((p) => p.name === 'metrics');
    assert.equal(grpcPort && grpcPort.containerPort, GRPC_PORT);
    assert.equal(metricsPort && metricsPort.containerPort, METRICS_PORT);
    const config = serverConfig(objs);
    assert.equal(portOf(config.listen || `0.0.0.0:${GRPC_PORT}`), GRPC_PORT, 'server listens on the gRPC port');
    assert.equal(portOf(config['metrics-listen'] || `0.0.0.0:${METRICS_PORT}`), METRICS_PORT,
      'server serves /metrics on the metrics port');

    for (const kind of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
      const p = c[kind];
      assert.ok(p, `${kind} is set`);
      assert.ok(p.grpc, `${kind} is a native gRPC probe`);
      for (const other of ['httpGet', 'tcpSocket', 'exec']) assert.equal(p[other], undefined, `${kind} has no ${other}`);
      assert.equal(p.grpc.port, GRPC_PORT, `${kind} probes port ${GRPC_PORT}`);
    }
    assert.equal(c.readinessProbe.grpc.service, 'onereward.v1.ImageFill');
    assert.equal(c.livenessProbe.grpc.service || '', '', 'liveness checks the overall service ""');
    assert.equal(c.startupProbe.grpc.service || '', '', 'startup checks the overall service ""');
    const patience = (c.startupProbe.periodSeconds || 10) * (c.startupProbe.failureThreshold || 3);
    const needed = overlay === 'gpu' ? 600 : 60; // real weights: minutes; the tiny model: seconds
    assert.ok(patience >= needed, `startup probe allows ${patience} s >= ${needed} s`);
    // Liveness must not kill a busy server: several failures in a row, each with a timeout.
    assert.ok((c.livenessProbe.failureThreshold || 3) >= 3, 'liveness tolerates a few misses');
  });

  test(`${overlay}: termination grace covers preStop pause plus the server's drain grace`, () => {
    const objs = render(overlay);
    const { pod, c } = server(objs);
    const config = serverConfig(objs);
    const drain = config['drain-grace'] !== undefined ? Number(config['drain-grace']) : DEFAULT_DRAIN_GRACE_S;
    const pause = preStopSeconds(c);
    assert.ok(pause >= 5, `preStop pauses ${pause} s: long enough for endpoints to drop the pod`);
    const grace = pod.terminationGracePeriodSeconds;
    assert.ok(Number.isInteger(grace), 'terminationGracePeriodSeconds is set');
    assert.ok(grace > drain, `grace ${grace} s > drain grace ${drain} s`);
    assert.ok(grace > pause + drain, `grace ${grace} s > preStop ${pause} s + drain grace ${drain} s`);
  });

  test(`${overlay}: non-root, read-only root file system, no capabilities`, () => {
    const objs = render(overlay);
    const { pod, c } = server(objs);
    const psc = pod.securityContext || {};
    const sc = c.securityContext || {};
    assert.equal(psc.runAsNonRoot, true, 'pod runAsNonRoot');
    assert.ok(Number(psc.runAsUser) > 0 || Number(sc.runAsUser) > 0, 'a non-zero runAsUser');
    assert.equal(sc.readOnlyRootFilesystem, true, 'readOnlyRootFilesystem');
    assert.equal(sc.allowPrivilegeEscalation, false, 'allowPrivilegeEscalation false');
    assert.notEqual(sc.privileged, true, 'not privileged');
    assert.deepEqual(sc.capabilities && sc.capabilities.drop, ['ALL'], 'drops ALL capabilities');
    assert.equal(sc.capabilities.add, undefined, 'adds none');
    const seccomp = (sc.seccompProfile || psc.seccompProfile || {}).type;
    assert.equal(seccomp, 'RuntimeDefault', 'seccomp RuntimeDefault');
    for (const f of ['hostNetwork', 'hostPID', 'hostIPC']) assert.notEqual(pod[f], true, `no ${f}`);
    assert.ok(!pod.volumes.some((v) => v.hostPath), 'no hostPath volumes');
    assert.equal(pod.automountServiceAccountToken, false, 'no service account token');
    // With a read-only root, /tmp (HOME, caches, --port-file) is a writable emptyDir.
    const tmp = (c.volumeMounts || []).find((m) => m.mountPath === '/tmp');
    assert.ok(tmp && !tmp.readOnly, '/tmp is mounted writable');
    assert.ok(pod.volumes.find((v) => v.name === tmp.name).emptyDir, '/tmp is an emptyDir');
  });

  test(`${overlay}: resources, and a GPU only in the gpu overlay`, () => {
    const objs = render(overlay);
    const { c } = server(objs);
    const r = c.resources || {};
    assert.ok(r.requests && r.requests.cpu && r.requests.memory, 'cpu and memory requests');
    assert.ok(r.limits && r.limits.memory, 'a memory limit');
    const text = JSON.stringify(objs);
    if (overlay === 'gpu') {
      assert.equal(String(r.limits[GPU]), '1', 'one GPU per pod');
      const config = serverConfig(objs);
      assert.match(config.device, /^cuda(:\d+)?$/, 'the server runs on the GPU');
    } else {
      assert.ok(!text.includes(GPU), `no ${GPU} anywhere in ${overlay}`);
      assert.equal(serverConfig(objs).device || 'cpu', 'cpu');
    }
  });

  test(`${overlay}: services, headless service, disruption budget, network policy`, () => {
    const objs = render(overlay);
    const { dep } = server(objs);
    const podLabels = dep.spec.template.metadata.labels;
    assert.ok(matches(dep.spec.selector.matchLabels, podLabels), 'Deployment selector matches its pods');
    const svcs = all(objs, 'Service');
    const main = svcs.find((s) => s.spec.clusterIP !== 'None');
    const headless = svcs.find((s) => s.spec.clusterIP === 'None');
    assert.ok(main && headless, 'a ClusterIP and a headless Service');
    for (const s of [main, headless]) {
      assert.ok(matches(s.spec.selector, podLabels), `${describe(s)} selects the server pods`);
      const p = s.spec.ports.find((x) => x.name === 'grpc');
      assert.ok(p && p.port === GRPC_PORT && (p.targetPort === 'grpc' || p.targetPort === GRPC_PORT),
        `${describe(s)} serves gRPC on ${GRPC_PORT}`);
    }
    assert.notEqual(headless.spec.publishNotReadyAddresses, true, 'headless lists ready pods only');

    const pdb = one(objs, 'PodDisruptionBudget');
    assert.ok(matches(pdb.spec.selector.matchLabels, podLabels), 'PDB selects the server pods');
    assert.ok(pdb.spec.maxUnavailable !== undefined || pdb.spec.minAvailable !== undefined, 'PDB has a budget');

    const np = one(objs, 'NetworkPolicy');
    assert.ok(matches(np.spec.podSelector.matchLabels, podLabels), 'NetworkPolicy selects the server pods');
    assert.ok(np.spec.policyTypes.includes('Ingress'), 'NetworkPolicy restricts ingress');
    const byPort = new Map();
    for (const rule of np.spec.ingress) {
      assert.ok(rule.ports && rule.ports.length, 'every ingress rule names its ports');
      assert.ok(rule.from && rule.from.length, 'every ingress rule names its sources');
      for (const f of rule.from) {
        assert.equal(f.ipBlock, undefined, 'no ipBlock sources');
        assert.ok(f.namespaceSelector, 'sources are namespaces');
        assert.equal(f.podSelector, undefined, 'whole namespaces, by name');
      }
      const namespaces = rule.from.flatMap((f) => {
        const ex = (f.namespaceSelector.matchExpressions || []).filter((e) => e.key === 'kubernetes.io/metadata.name');
        const ml = f.namespaceSelector.matchLabels || {};
        assert.ok(ex.length || ml['kubernetes.io/metadata.name'], 'namespaces selected by name');
        return ex.flatMap((e) => { assert.equal(e.operator, 'In'); return e.values; })
          .concat(ml['kubernetes.io/metadata.name'] ? [ml['kubernetes.io/metadata.name']] : []);
      });
      for (const p of rule.ports) {
        assert.ok(!byPort.has(p.port), `port ${p.port} appears in one rule`);
        byPort.set(p.port, namespaces);
      }
    }
    assert.deepEqual([...byPort.keys()].sort(), [GRPC_PORT, METRICS_PORT].sort(), 'only the gRPC and metrics ports');
    assert.ok(byPort.get(GRPC_PORT).length > 0, 'gRPC from the configured namespaces');
    assert.ok(!byPort.get(GRPC_PORT).includes('monitoring') || overlay === 'cpu-dev', 'gRPC clients configured');
    assert.deepEqual(byPort.get(METRICS_PORT), ['monitoring'], 'metrics only from monitoring');
  });

  test(`${overlay}: ServiceMonitor scrapes the metrics port; PrometheusRule = deploy/prometheus/alerts.yml`, () => {
    const objs = render(overlay);
    const sm = one(objs, 'ServiceMonitor');
    const selected = all(objs, 'Service').filter((s) => matches(sm.spec.selector.matchLabels, s.metadata.labels));
    assert.equal(selected.length, 1, 'the ServiceMonitor selects exactly one Service (no double scrape)');
    const metricsPort = selected[0].spec.ports.find((p) => p.name === sm.spec.endpoints[0].port);
    assert.ok(metricsPort && metricsPort.port === METRICS_PORT, 'it scrapes the metrics port');
    assert.equal(sm.spec.endpoints[0].path || '/metrics', '/metrics');

    const rule = one(objs, 'PrometheusRule');
    const file = YAML.parse(fs.readFileSync(path.join(ROOT, 'deploy', 'prometheus', 'alerts.yml'), 'utf8'));
    assert.deepEqual(rule.spec.groups, file.groups, 'PrometheusRule groups equal alerts.yml groups');
    const alerts = file.groups.flatMap((g) => g.rules.map((r) => r.alert)).filter(Boolean);
    for (const a of ['OneRewardQueueBackingUp', 'OneRewardErrorRatioHigh', 'OneRewardNoStepProgress', 'OneRewardModelNotReady']) {
      assert.ok(alerts.includes(a), `alert ${a}`);
    }
  });
}

test('gpu: weights from the PersistentVolumeClaim, in the documented layout', () => {
  const objs = render('gpu');
  const { pod, c } = server(objs);
  const mount = c.volumeMounts.find((m) => m.mountPath === '/models');
  assert.ok(mount && mount.readOnly, '/models is mounted read-only');
  const vol = pod.volumes.find((v) => v.name === mount.name);
  assert.ok(vol.persistentVolumeClaim, '/models is a PersistentVolumeClaim');
  const pvc = one(objs, 'PersistentVolumeClaim', vol.persistentVolumeClaim.claimName);
  assert.ok(pvc.spec.accessModes.some((m) => m === 'ReadWriteMany' || m === 'ReadOnlyMany'),
    'replicas on several nodes can mount the weights');
  const config = serverConfig(objs);
  assert.equal(config.model, '/models/FLUX.1-Fill-dev');
  const variants = [].concat(config.variant || []);
  assert.ok(variants.includes('onereward=/models/OneReward/flux.1-fill-dev-OneReward-transformer'));
  assert.ok(variants.includes('onereward-dynamic=/models/OneReward/flux.1-fill-dev-OneRewardDynamic-transformer'));
  const loras = [].concat(config.lora || []);
  assert.ok(loras.some((l) => l.startsWith('object-removal=/models/lora/')), 'the object-removal LoRA');
  // The README documents the same paths.
  const readme = fs.readFileSync(path.join(ROOT, 'deploy', 'README.md'), 'utf8');
  for (const p of ['FLUX.1-Fill-dev', 'flux.1-fill-dev-OneReward-transformer',
    'flux.1-fill-dev-OneRewardDynamic-transformer', 'flux.1-fill-dev-object-removal-lora']) {
    assert.ok(readme.includes(p), `deploy/README.md documents ${p}`);
  }
});

test('gpu: KEDA scales the Deployment on onereward_queue_depth', () => {
  const objs = render('gpu');
  const { dep } = server(objs);
  const so = one(objs, 'ScaledObject');
  assert.equal(so.spec.scaleTargetRef.name, dep.metadata.name);
  assert.ok(so.spec.minReplicaCount >= 1, 'never scales to zero (loading takes minutes)');
  assert.ok(so.spec.maxReplicaCount > so.spec.minReplicaCount);
  const trig = so.spec.triggers.find((t) => t.type === 'prometheus');
  assert.ok(trig, 'a prometheus trigger');
  assert.match(trig.metadata.query, /onereward_queue_depth/);
  assert.ok(trig.metadata.query.includes(`namespace="${dep.metadata.namespace}"`),
    'the query names the namespace the overlay deploys to');
  assert.ok(Number(trig.metadata.threshold) > 0);
  assert.equal(dep.spec.replicas, undefined, 'the Deployment leaves replicas to the autoscaler');
  assert.equal(all(objs, 'HorizontalPodAutoscaler').length, 0, 'no second autoscaler');
});

test('cpu-dev: serves the tiny pipeline embedded in the image, no weights volume', () => {
  const objs = render('cpu-dev');
  const config = serverConfig(objs);
  assert.equal(config.model, '/opt/onereward/models/tiny');
  assert.equal(all(objs, 'PersistentVolumeClaim').length, 0);
  assert.equal(all(objs, 'ScaledObject').length, 0);
  const { pod } = server(objs);
  assert.ok(!pod.volumes.some((v) => v.persistentVolumeClaim), 'no claim referenced');
});

test('Dockerfile: multi-stage from BASE_IMAGE, non-root user of the manifests, ports, entrypoint', () => {
  const text = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const froms = lines.filter((l) => /^FROM\s/i.test(l));
  assert.ok(froms.length >= 2, 'at least a build and a runtime stage');
  assert.match(froms[0], /^FROM\s+\$\{?BASE_IMAGE\}?\s/i, 'the build stage starts from BASE_IMAGE');
  assert.ok(lines.some((l) => /^ARG\s+BASE_IMAGE\b/.test(l)), 'ARG BASE_IMAGE');
  // The runtime stage: everything after the last FROM.
  const last = lines.lastIndexOf(froms[froms.length - 1]);
  const runtime = lines.slice(last);
  assert.ok(!runtime.some((l) => /^COPY\s+(?!--from)/i.test(l)), 'the runtime stage copies only from the build stage');
  const args = Object.fromEntries(runtime.filter((l) => /^ARG\s+\w+=/.test(l))
    .map((l) => l.replace(/^ARG\s+/, '').split('=')));
  const user = runtime.filter((l) => /^USER\s/.test(l)).pop();
  assert.ok(user, 'a USER in the runtime stage');
  const uid = user.replace(/^USER\s+/, '').split(':')[0].replace(/^\$\{?(\w+)\}?$/, (_, v) => args[v]);
  assert.match(uid, /^[1-9]\d*$/, `a numeric non-root uid (${uid})`);
  const expose = runtime.filter((l) => /^EXPOSE\s/.test(l)).flatMap((l) => l.split(/\s+/).slice(1)).map(Number);
  assert.deepEqual(expose.sort(), [GRPC_PORT, METRICS_PORT].sort(), 'exposes the gRPC and metrics ports');
  assert.ok(runtime.some((l) => /^ENTRYPOINT\s+\[.*onereward-entrypoint/.test(l)), 'starts the entrypoint');
  for (const overlay of OVERLAYS) {
    const { pod } = server(render(overlay));
    assert.equal(String(pod.securityContext.runAsUser), uid, `${overlay} runs as the image's user`);
  }
});
