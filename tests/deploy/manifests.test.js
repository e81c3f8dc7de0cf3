// deploy/k8s checked offline (issue 15): every overlay renders with kubectl kustomize (with
// each kubectl in SESSIONTOKEN_KUBECTLS, colon-separated; default: the kubectl on PATH, e.g.
// Debian 12's kubernetes-client 1.20 or a newer one) and the same with all of them; every
// rendered object validates against the Kubernetes schemas (npm kubernetes-models); and the
// hardening is asserted object by object. The checker is also shown failing on manifests
// with one hardening property removed, so that it cannot pass by accident.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const yaml = require('js-yaml');

const REPO = path.resolve(__dirname, '..', '..');
const K8S = path.join(REPO, 'deploy', 'k8s');
const OVERLAYS = ['single', 'ha', 'ha-external-etcd'];
const EXAMPLES = ['rotate-cronjob.yaml'];
const KUBECTLS = (process.env.SESSIONTOKEN_KUBECTLS || 'kubectl').split(':').filter(Boolean);
const SERVER_LABELS = { 'app.kubernetes.io/name': 'sessiontoken', 'app.kubernetes.io/component': 'server' };

function render(kubectl, overlay) {
  const r = spawnSync(kubectl, ['kustomize', path.join(K8S, 'overlays', overlay)], { encoding: 'utf8' });
  if (r.error) throw new Error(`${kubectl}: ${r.error.message} (Debian: apt-get install kubernetes-client)`);
  assert.strictEqual(r.status, 0, `${kubectl} kustomize ${overlay}:\n${r.stderr}`);
  return yaml.loadAll(r.stdout).filter(Boolean);
}

const rendered = {};
function objects(overlay) {
  if (!rendered[overlay]) rendered[overlay] = render(KUBECTLS[0], overlay);
  return rendered[overlay];
}

// ---- schema validation ----------------------------------------------------------------------
function validate(obj) {
  const mod = require(`kubernetes-models/${obj.apiVersion}/${obj.kind}`);
  new mod[obj.kind](obj).validate();  // throws naming the field
}

// ---- the hardening checker: a list of problems, empty when everything holds ----------------
const matches = (selector, labels) =>
  Object.entries(selector || {}).every(([k, v]) => (labels || {})[k] === v);

function podSpecs(objs) {
  const out = [];
  for (const o of objs) {
    if (o.kind === 'Deployment' || o.kind === 'StatefulSet') out.push({ owner: o, pod: o.spec.template, longRunning: true });
    if (o.kind === 'CronJob') out.push({ owner: o, pod: o.spec.jobTemplate.spec.template, longRunning: false });
  }
  return out;
}

function shutdownGraceSeconds(objs) {
  const cm = objs.find((o) => o.kind === 'ConfigMap' && o.data && o.data['server.textproto']);
  const m = cm && /shutdown_grace\s*\{\s*seconds:\s*(\d+)/.exec(cm.data['server.textproto']);
  return m ? Number(m[1]) : 10;  // the server's default
}

function checkContainer(where, c, podSc, problems) {
  const sc = c.securityContext || {};
  const need = (cond, what) => { if (!cond) problems.push(`${where}: ${what}`); };
  need(c.image && /:[^/]+$/.test(c.image) && !/:latest$/.test(c.image), `image ${c.image} not pinned by tag`);
  for (const kind of ['requests', 'limits']) {
    for (const r of ['cpu', 'memory']) need(c.resources && c.resources[kind] && c.resources[kind][r], `no ${kind}.${r}`);
  }
  need(sc.runAsNonRoot === true || (podSc.runAsNonRoot === true && sc.runAsNonRoot !== false), 'not runAsNonRoot');
  need((sc.runAsUser ?? podSc.runAsUser) !== 0, 'runAsUser 0');
  need(sc.readOnlyRootFilesystem === true, 'root filesystem not read-only');
  need(sc.allowPrivilegeEscalation === false, 'privilege escalation not disabled');
  need(sc.privileged !== true, 'privileged');
  need(sc.capabilities && (sc.capabilities.drop || []).includes('ALL'), 'capabilities not dropped (ALL)');
  need(!(sc.capabilities && sc.capabilities.add && sc.capabilities.add.length), 'capabilities added');
  const seccomp = (sc.seccompProfile || podSc.seccompProfile || {}).type;
  need(seccomp === 'RuntimeDefault' || seccomp === 'Localhost', 'no seccomp profile');
  for (const e of c.env || []) {
    need(!/KEK|TOKEN|PASSWORD|SECRET/i.test(e.name) || e.value === undefined, `env ${e.name} holds a literal secret`);
  }
}

function checkSessiontokenContainer(where, c, spec, objs, problems) {
  const need = (cond, what) => { if (!cond) problems.push(`${where}: ${what}`); };
  const port = (c.ports || []).find((p) => p.name === 'grpc');
  need(port, 'no grpc port');
  for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
    need(c[probe] && c[probe].grpc && port && c[probe].grpc.port === port.containerPort,
      `${probe} is not a native gRPC probe on the serving port`);
  }
  const sleep = c.lifecycle && c.lifecycle.preStop && c.lifecycle.preStop.exec &&
    /^\/bin\/sleep$/.test(c.lifecycle.preStop.exec.command[0]) ? Number(c.lifecycle.preStop.exec.command[1]) : 0;
  need(sleep >= 3, 'no preStop sleep (endpoints must drop the pod before it drains)');
  const grace = spec.terminationGracePeriodSeconds ?? 30;
  need(grace > sleep + shutdownGraceSeconds(objs),
    `terminationGracePeriodSeconds ${grace} does not fit preStop ${sleep} s + shutdown_grace ${shutdownGraceSeconds(objs)} s`);
  // The KEK only from a Secret (the environment variable the server reads and unsets).
  const kek = (c.env || []).find((e) => e.name === 'SESSIONTOKEN_KEK');
  need(kek && kek.valueFrom && kek.valueFrom.secretKeyRef && kek.valueFrom.secretKeyRef.name,
    'KEK not from a Secret');
  // Every file of secret material the server reads (config file and flags) is on a Secret.
  const cm = objs.find((o) => o.kind === 'ConfigMap' && o.data && o.data['server.textproto']);
  const text = `${cm ? cm.data['server.textproto'] : ''}\n${(c.args || []).join('\n')}`;
  const files = [...text.matchAll(/(?:kek_file|key_file|cert_file|client_ca_file|ca_file|password_file)[:=]\s*"?([^"\s]+)/g)].map((m) => m[1]);
  need(!/kek_file/.test(text), 'a KEK file (the server refuses group-readable ones: fsGroup makes Secret files so)');
  for (const f of files) {
    const mount = (c.volumeMounts || []).filter((m) => f.startsWith(`${m.mountPath}/`))
      .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
    const vol = mount && (spec.volumes || []).find((v) => v.name === mount.name);
    need(vol && vol.secret, `${f} is not on a Secret volume`);
  }
  need(!(c.env || []).some((e) => /KEK/.test(e.name) && e.value !== undefined), 'KEK in a literal env var');
}

function checkHardening(objs) {
  const problems = [];
  for (const o of objs) {
    if (o.kind === 'Secret') problems.push(`Secret ${o.metadata.name} in the manifests (secrets are made by make-secrets.sh, never committed)`);
  }
  for (const { owner, pod, longRunning } of podSpecs(objs)) {
    const name = `${owner.kind} ${owner.metadata.name}`;
    const spec = pod.spec;
    const podSc = spec.securityContext || {};
    const need = (cond, what) => { if (!cond) problems.push(`${name}: ${what}`); };
    need(spec.automountServiceAccountToken === false, 'service account token automounted');
    need(podSc.runAsNonRoot === true, 'pod not runAsNonRoot');
    need(podSc.seccompProfile && podSc.seccompProfile.type === 'RuntimeDefault', 'pod seccomp not RuntimeDefault');
    need(!spec.hostNetwork && !spec.hostPID && !spec.hostIPC, 'host namespaces');
    for (const c of [...(spec.initContainers || []), ...spec.containers]) checkContainer(`${name}/${c.name}`, c, podSc, problems);
    if (longRunning) {
      for (const c of spec.containers) {
        for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) need(c[probe], `${c.name} has no ${probe}`);
      }
      need((spec.topologySpreadConstraints || []).length > 0, 'no topology spread');
      need(objs.some((p) => p.kind === 'PodDisruptionBudget' && matches(p.spec.selector.matchLabels, pod.metadata.labels)),
        'no PodDisruptionBudget');
    }
    for (const c of spec.containers.filter((x) => x.name === 'sessiontoken')) {
      checkSessiontokenContainer(`${name}/${c.name}`, c, spec, objs, problems);
    }
  }
  const server = objs.find((o) => o.kind === 'Deployment' && o.metadata.name === 'sessiontoken');
  if (!server) return [...problems, 'no sessiontoken Deployment'];
  const need = (cond, what) => { if (!cond) problems.push(what); };
  const podLabels = server.spec.template.metadata.labels;
  const sa = objs.find((o) => o.kind === 'ServiceAccount' && o.metadata.name === server.spec.template.spec.serviceAccountName);
  need(sa && sa.automountServiceAccountToken === false, 'the pods\' ServiceAccount automounts its token');
  const services = objs.filter((o) => o.kind === 'Service' && matches(o.spec.selector, podLabels));
  need(services.some((s) => s.spec.clusterIP !== 'None'), 'no ClusterIP Service for the server');
  need(services.some((s) => s.spec.clusterIP === 'None'), 'no headless Service (client-side balancing)');
  const np = objs.find((o) => o.kind === 'NetworkPolicy' && matches(o.spec.podSelector.matchLabels, podLabels) &&
    (o.spec.policyTypes || []).includes('Ingress'));
  need(np && np.spec.ingress.length > 0 && np.spec.ingress.every((r) => (r.from || []).length > 0 && (r.ports || []).length > 0),
    'no NetworkPolicy restricting who reaches the token port');
  const cmVolume = server.spec.template.spec.volumes.find((v) => v.configMap);
  need(cmVolume && objs.some((o) => o.kind === 'ConfigMap' && o.metadata.name === cmVolume.configMap.name &&
    o.data['server.textproto']), 'the config file is not in a ConfigMap the pods mount');
  return problems;
}

// ---- tests ------------------------------------------------------------------------------------
// Kustomize versions order merged list items differently (a patched volume first or last):
// compare lists of named items as sets, and ConfigMap names without their hash suffix.
function canonical(v) {
  if (Array.isArray(v)) {
    const items = v.map(canonical);
    if (items.every((i) => i && typeof i === 'object' && typeof i.name === 'string')) {
      items.sort((a, b) => a.name.localeCompare(b.name));
    }
    return items;
  }
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical(v[k])]));
  }
  return typeof v === 'string' ? v.replace(/^sessiontoken-config-[a-z0-9]{10}$/, 'sessiontoken-config-HASH') : v;
}

test('every kubectl given renders every overlay, and all render the same objects', () => {
  const versions = KUBECTLS.map((k) => (spawnSync(k, ['version', '--client'], { encoding: 'utf8' }).stdout || '').split('\n')[0]);
  console.log(`rendering with: ${KUBECTLS.map((k, i) => `${k} (${versions[i]})`).join('; ')}`);
  for (const overlay of OVERLAYS) {
    const first = objects(overlay).map((o) => JSON.stringify(canonical(o))).sort();
    for (const kubectl of KUBECTLS.slice(1)) {
      const other = render(kubectl, overlay).map((o) => JSON.stringify(canonical(o))).sort();
      const differ = first.filter((o, i) => o !== other[i]).map((o) => JSON.parse(o).kind);
      assert.ok(other.length === first.length && differ.length === 0,
        `${kubectl} renders ${overlay} differently (${other.length} vs ${first.length} objects; differing: ${differ})`);
    }
  }
});

for (const overlay of OVERLAYS) {
  test(`${overlay}: every object validates against the Kubernetes schemas`, () => {
    for (const o of objects(overlay)) assert.doesNotThrow(() => validate(o), `${o.kind} ${o.metadata.name}`);
  });
  test(`${overlay}: hardening holds object by object`, () => {
    assert.deepStrictEqual(checkHardening(objects(overlay)), []);
  });
}

for (const file of EXAMPLES) {
  test(`examples/${file}: validates and is hardened`, () => {
    const objs = yaml.loadAll(fs.readFileSync(path.join(K8S, 'examples', file), 'utf8')).filter(Boolean);
    for (const o of objs) validate(o);
    assert.deepStrictEqual(checkHardening([...objects('single'), ...objs]), []);
  });
}

test('single: one replica, file store on a PersistentVolumeClaim, Recreate', () => {
  const objs = objects('single');
  const d = objs.find((o) => o.kind === 'Deployment');
  assert.strictEqual(d.spec.replicas, 1);
  assert.strictEqual(d.spec.strategy.type, 'Recreate');
  const data = d.spec.template.spec.volumes.find((v) => v.name === 'data');
  assert.deepStrictEqual(Object.keys(data).sort(), ['name', 'persistentVolumeClaim']);
  assert.ok(objs.some((o) => o.kind === 'PersistentVolumeClaim' && o.metadata.name === data.persistentVolumeClaim.claimName));
});

test('ha: 3 replicas on the 3 members of the etcd StatefulSet', () => {
  const objs = objects('ha');
  const d = objs.find((o) => o.kind === 'Deployment');
  assert.strictEqual(d.spec.replicas, 3);
  const args = d.spec.template.spec.containers[0].args;
  assert.ok(args.includes('--store=etcd'), args.join(' '));
  const endpoints = args.find((a) => a.startsWith('--etcd_endpoints=')).split('=')[1].split(',');
  const sts = objs.find((o) => o.kind === 'StatefulSet');
  assert.strictEqual(sts.spec.replicas, 3);
  const headless = objs.find((o) => o.kind === 'Service' && o.metadata.name === sts.spec.serviceName);
  assert.strictEqual(headless.spec.clusterIP, 'None');
  assert.ok(matches(headless.spec.selector, sts.spec.template.metadata.labels));
  assert.deepStrictEqual(endpoints, [0, 1, 2].map((i) => `${sts.metadata.name}-${i}.${sts.spec.serviceName}:2379`));
  assert.strictEqual(sts.spec.volumeClaimTemplates.length, 1);
  // sessiontoken pods may reach etcd (egress), etcd admits them (ingress).
  const egress = objs.find((o) => o.kind === 'NetworkPolicy' && matches(o.spec.podSelector.matchLabels, SERVER_LABELS) &&
    (o.spec.egress || []).some((r) => r.ports.some((p) => p.port === 2379)));
  assert.ok(egress, 'no egress to etcd');
});

test('ha-external-etcd: etcd endpoints, TLS and password from a Secret', () => {
  const d = objects('ha-external-etcd').find((o) => o.kind === 'Deployment');
  const args = d.spec.template.spec.containers[0].args.join(' ');
  for (const f of ['--store=etcd', '--etcd_endpoints=', '--etcd_ca_file=', '--etcd_cert_file=', '--etcd_key_file=', '--etcd_password_file=']) {
    assert.ok(args.includes(f), `${f} missing`);
  }
  const v = d.spec.template.spec.volumes.find((x) => x.name === 'etcd');
  assert.strictEqual(v.secret.secretName, 'sessiontoken-etcd');
});

test('the checker fails manifests missing any one hardening property', () => {
  const breakages = {
    'no readiness probe': (d) => { delete d.spec.template.spec.containers[0].readinessProbe; },
    'an exec probe instead of gRPC': (d) => { d.spec.template.spec.containers[0].livenessProbe = { exec: { command: ['true'] } }; },
    'no memory limit': (d) => { delete d.spec.template.spec.containers[0].resources.limits.memory; },
    'root allowed': (d) => { d.spec.template.spec.securityContext.runAsNonRoot = false; delete d.spec.template.spec.containers[0].securityContext.runAsNonRoot; },
    'writable root': (d) => { d.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem = false; },
    'capabilities kept': (d) => { d.spec.template.spec.containers[0].securityContext.capabilities.drop = []; },
    'latest image': (d) => { d.spec.template.spec.containers[0].image = 'localhost/sessiontoken:latest'; },
    'untagged init image': (d) => { d.spec.template.spec.initContainers[0].image = 'localhost/sessiontoken'; },
    'token automount': (d) => { d.spec.template.spec.automountServiceAccountToken = true; },
    'grace too short': (d) => { d.spec.template.spec.terminationGracePeriodSeconds = 10; },
    'KEK from a ConfigMap': (d) => { d.spec.template.spec.containers[0].env[0].valueFrom = { configMapKeyRef: { name: 'x', key: 'kek' } }; },
    'KEK as a literal': (d) => { d.spec.template.spec.containers[0].env[0] = { name: 'SESSIONTOKEN_KEK', value: '00' }; },
    'no topology spread': (d) => { delete d.spec.template.spec.topologySpreadConstraints; },
  };
  for (const [what, breakIt] of Object.entries(breakages)) {
    const objs = JSON.parse(JSON.stringify(objects('single')));
    breakIt(objs.find((o) => o.kind === 'Deployment'));
    assert.notDeepStrictEqual(checkHardening(objs), [], `the checker accepted: ${what}`);
  }
  const noPdb = objects('ha').filter((o) => o.kind !== 'PodDisruptionBudget');
  assert.ok(checkHardening(noPdb).some((p) => /PodDisruptionBudget/.test(p)));
  const noHeadless = objects('single').filter((o) => !(o.kind === 'Service' && o.spec.clusterIP === 'None'));
  assert.ok(checkHardening(noHeadless).some((p) => /headless/.test(p)));
  const noPolicy = objects('single').filter((o) => o.kind !== 'NetworkPolicy');
  assert.ok(checkHardening(noPolicy).some((p) => /NetworkPolicy/.test(p)));
  // The schema check catches wrong types.
  const bad = JSON.parse(JSON.stringify(objects('single').find((o) => o.kind === 'Deployment')));
  bad.spec.replicas = 'two';
  assert.throws(() => validate(bad), /replicas/);
});
