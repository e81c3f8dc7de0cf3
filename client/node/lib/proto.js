'use strict';
// Loads the service definitions from the repository's .proto files at run time
// (proto/sessiontoken/v1 is the contract; nothing is generated or copied), and the gRPC
// service config every client shares (sessiontoken/v1/service_config.json: deadlines and
// retries per method).
//
// The well-known types imported by the protos (google/protobuf/duration.proto,
// timestamp.proto) are bundled with protobufjs, which @grpc/proto-loader uses: protobufjs
// resolves any import path ending in "google/protobuf/<name>.proto" to its bundled copy
// before consulting includeDirs, so no system include directory is needed.

const path = require('node:path');
const fs = require('node:fs');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const DEFAULT_PROTO_DIR = path.resolve(__dirname, '..', '..', '..', 'proto');
const FILES = ['sessiontoken/v1/tokens.proto', 'sessiontoken/v1/admin.proto'];
const SERVICE_CONFIG = 'sessiontoken/v1/service_config.json';

// Field names stay as in the .proto (snake_case); lib/client.js maps them to the public,
// camelCase result objects. 64-bit integers arrive as decimal strings, enums as names, bytes
// as Buffers, unset scalars as their defaults and unset messages as null.
const LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
};

const cache = new Map();

function protoDirFrom(option) {
  return path.resolve(option || process.env.SESSIONTOKEN_PROTO_DIR || DEFAULT_PROTO_DIR);
}

/**
 * Returns {SessionTokens, KeyAdmin, enums, serviceConfig} for the protos under protoDir
 * (cached per dir). enums: {Algorithm, KeyState}, each a Map name -> number. serviceConfig:
 * the text of service_config.json (checked to be JSON with a methodConfig list).
 */
function load(protoDirOption) {
  const protoDir = protoDirFrom(protoDirOption);
  const cached = cache.get(protoDir);
  if (cached) return cached;
  for (const f of [...FILES, SERVICE_CONFIG]) {
    if (!fs.existsSync(path.join(protoDir, f))) {
      throw new Error(`sessiontoken: ${f} not found under ${protoDir} ` +
        '(pass protoDir or set SESSIONTOKEN_PROTO_DIR to the directory holding sessiontoken/v1)');
    }
  }
  const def = protoLoader.loadSync(FILES, { ...LOADER_OPTIONS, includeDirs: [protoDir] });
  const pkg = grpc.loadPackageDefinition(def).sessiontoken.v1;
  const enumOf = (name) => new Map(def[name].type.value.map((v) => [v.name, v.number]));
  const serviceConfig = fs.readFileSync(path.join(protoDir, SERVICE_CONFIG), 'utf8');
  splitServiceConfig(serviceConfig);  // fails early on a malformed file
  const loaded = {
    protoDir,
    serviceConfig,
    SessionTokens: pkg.SessionTokens,
    KeyAdmin: pkg.KeyAdmin,
    enums: {
      Algorithm: enumOf('sessiontoken.v1.Algorithm'),
      KeyState: enumOf('sessiontoken.v1.KeyState'),
    },
  };
  cache.set(protoDir, loaded);
  return loaded;
}

/**
 * Splits a service config (JSON text) into {grpcConfig: the JSON without its "timeout"s,
 * timeoutMs(service, method): the method's default deadline in ms, or undefined}. The client
 * sets each call's deadline itself: grpc-js 1.14 reads the fraction of a timeout such as
 * "0.5s" as nanoseconds, and gRPC core 1.51 (the C++ and Python clients) misapplies them too.
 */
function splitServiceConfig(text) {
  const config = JSON.parse(text);
  if (!Array.isArray(config.methodConfig)) throw new Error('service config: no methodConfig list');
  const timeouts = new Map();
  for (const entry of config.methodConfig) {
    if (entry.timeout === undefined) continue;
    const m = /^(\d+(?:\.\d+)?)s$/.exec(entry.timeout);
    if (!m) throw new Error(`service config: timeout ${JSON.stringify(entry.timeout)} is not a duration`);
    for (const n of entry.name || []) timeouts.set(`${n.service || ''}/${n.method || ''}`, Number(m[1]) * 1000);
    delete entry.timeout;
  }
  const timeoutMs = (service, method) => timeouts.get(`${service}/${method}`) ?? timeouts.get(`${service}/`);
  return { grpcConfig: JSON.stringify(config), timeoutMs };
}

module.exports = { splitServiceConfig, load, DEFAULT_PROTO_DIR, LOADER_OPTIONS, SERVICE_CONFIG };
