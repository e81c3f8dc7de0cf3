'use strict';
// Test support (not a test file: node --test runs every .js under test/). Starts the real
// sessiontoken-server binary on 127.0.0.1 with a port it picks, in a fresh temporary data
// directory with a random KEK, and stops it with SIGTERM.

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const LOOPBACK = '127.0.0.1';
const LISTEN_RE = /^sessiontoken-server listening on 127\.0\.0\.1:(\d+)$/;
const STARTUP_TIMEOUT_MS = 10000;
const STOP_TIMEOUT_MS = 15000;

// Never let a proxy from the environment see loopback traffic (grpc-js honours them).
for (const name of ['http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'grpc_proxy', 'all_proxy', 'ALL_PROXY']) {
  delete process.env[name];
}
process.env.no_proxy = process.env.NO_PROXY = '127.0.0.1,localhost';

function serverBinary() {
  const bin = process.env.SESSIONTOKEN_SERVER;
  if (!bin) {
    throw new Error('SESSIONTOKEN_SERVER is not set (ctest sets it; by hand: ' +
      'SESSIONTOKEN_SERVER=build/dev/server/sessiontoken-server node --test test/)');
  }
  if (!fs.existsSync(bin)) throw new Error(`SESSIONTOKEN_SERVER=${bin}: no such file`);
  return bin;
}

function childEnv() {
  const env = { ...process.env };
  delete env.SESSIONTOKEN_KEK;
  return env;
}

function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * Starts a server. options: {port} (default 0: the server picks), {dir} to reuse a data dir
 * and KEK. Resolves to {address, port, dir, dataDir, stop(), logText()}.
 */
async function startServer(options = {}) {
  const dir = options.dir || tempDir('sessiontoken-node-');
  const dataDir = path.join(dir, 'data');
  const kekFile = path.join(dir, 'kek.hex');
  if (!fs.existsSync(kekFile)) {
    fs.writeFileSync(kekFile, crypto.randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
  }
  const logFile = path.join(dir, `server-${Date.now()}-${Math.random().toString(16).slice(2)}.log`);
  const log = fs.openSync(logFile, 'w');
  const proc = spawn(serverBinary(), [
    `--listen=${LOOPBACK}:${options.port || 0}`, `--data_dir=${dataDir}`, `--kek_file=${kekFile}`,
  ], { stdio: ['ignore', 'pipe', log], env: childEnv() });
  fs.closeSync(log);
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const logText = () => fs.readFileSync(logFile, 'utf8');

  const lines = readline.createInterface({ input: proc.stdout });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`server did not announce its port within ${STARTUP_TIMEOUT_MS} ms:\n${logText()}`));
    }, STARTUP_TIMEOUT_MS);
    let first = true;
    lines.on('line', (line) => {
      if (!first) return;  // later lines are drained and ignored
      first = false;
      clearTimeout(timer);
      const m = LISTEN_RE.exec(line);
      if (m) resolve(Number(m[1]));
      else { proc.kill('SIGKILL'); reject(new Error(`unexpected first stdout line: ${JSON.stringify(line)}`)); }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`server exited during start-up (code ${code}, signal ${signal}):\n${logText()}`));
    });
  });

  let stopped = null;
  async function stop() {
    if (stopped) return stopped;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
    stopped = exited.finally(() => clearTimeout(timer));
    return stopped;
  }
  return { address: `${LOOPBACK}:${port}`, port, dir, dataDir, proc, stop, logText, exited };
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago (for "server comes up later" tests).
 * Taken below the ephemeral range (as scripts/localproc.py): a port from listen(0) is free
 * again once closed, and any outgoing connection on the machine may take it before the
 * server binds it.
 */
async function freePort() {
  const net = require('node:net');
  let low = 32768;
  try {
    low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0]) || low;
  } catch {
    // not Linux: the default range's start
  }
  const tryPort = (port) => new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(null));
    s.listen(port, LOOPBACK, () => {
      const bound = s.address().port;
      s.close(() => resolve(bound));
    });
  });
  for (let attempt = 0; attempt < 100 && low > 11000; attempt++) {
    const port = await tryPort(10000 + Math.floor(Math.random() * (low - 10000)));
    if (port !== null) return port;
  }
  const port = await tryPort(0);
  if (port === null) throw new Error('no free port on 127.0.0.1');
  return port;
}

/** A logger that records what the middleware logs: {entries, error, warn, debug, find(re)}. */
function recordingLogger() {
  const entries = [];
  const rec = (level) => (...args) => entries.push({ level, message: args.map(String).join(' ') });
  return {
    entries,
    error: rec('error'),
    warn: rec('warn'),
    debug: rec('debug'),
    find: (level, re) => entries.filter((e) => e.level === level && re.test(e.message)),
    clear: () => { entries.length = 0; },
  };
}

module.exports = { startServer, freePort, recordingLogger, tempDir, LOOPBACK };
