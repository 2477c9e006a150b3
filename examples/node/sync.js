#!/usr/bin/env node
// A Node.js client of the mirror (package mirror.v1), with @grpc/grpc-js and
// @grpc/proto-loader: create a repository and a remote, stream a sync, print the new
// version's content summary. Every failure is printed with its google.rpc details.
//
//   npm ci
//   node sync.js SERVER UPSTREAM_URL UPSTREAM_NAME REPOSITORY REMOTE [INCLUDE_TAGS]
//   node sync.js 127.0.0.1:50051 http://127.0.0.1:5000 library/hello-world hello-node hello-node 'latest'
//
// Exit status: 0 when the sync completed, 1 otherwise.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

// The loader options that matter with this API:
const LOADER_OPTIONS = {
  keepCase: true, // field names as in mirror.proto (upstream_name), as grpcurl's -d takes them
  enums: String, // enum values by name ('TASK_STATE_COMPLETED'), not by number
  longs: String, // int64 (sizes, byte counts) as decimal strings: a JS number is exact only to 2^53
  defaults: true, // unset fields read as their zero value, as in every other language
  oneofs: true, // Content says which of blob / manifest / tag / signature it holds
};

const PROTOS = process.env.MIRROR_PROTOS || path.resolve(__dirname, '..', '..', 'protos');
const mirror = grpc.loadPackageDefinition(
  protoLoader.loadSync(path.join(PROTOS, 'mirror.proto'), {
    ...LOADER_OPTIONS,
    includeDirs: [PROTOS],
  }),
).mirror.v1;

// The google.rpc messages of the `grpc-status-details-bin` trailer. proto-loader gives grpc
// descriptors, not decoders, so these are decoded with protobufjs (proto-loader's own base).
const rpc = new protobuf.Root().loadSync(
  path.join(__dirname, 'protos', 'google', 'rpc', 'rich_status.proto'),
  {keepCase: true}, // snake_case names here too: type_url, field_violations
);
const TO_OBJECT = {longs: String, enums: String, defaults: true};

function decode(typeName, bytes) {
  const type = rpc.lookupType(typeName);
  return type.toObject(type.decode(bytes), TO_OBJECT);
}

/** A failed call as {code, message, reason, metadata, violations}, from its rich status. */
function richError(err) {
  const out = {
    code: grpc.status[err.code] ?? String(err.code),
    message: err.details,
    reason: '',
    metadata: {},
    violations: [],
  };
  const [raw] = err.metadata ? err.metadata.get('grpc-status-details-bin') : [];
  if (!raw) return out; // e.g. the server is unreachable: no rich status
  const status = decode('google.rpc.Status', raw);
  out.message = status.message;
  for (const any of status.details) {
    const typeName = any.type_url.split('/').pop(); // type.googleapis.com/google.rpc.ErrorInfo
    if (typeName === 'google.rpc.ErrorInfo') {
      const info = decode(typeName, any.value);
      out.reason = info.reason;
      out.metadata = info.metadata;
    } else if (typeName === 'google.rpc.BadRequest') {
      out.violations = decode(typeName, any.value).field_violations;
    }
  }
  return out;
}

function errorLine(err) {
  const e = richError(err);
  const head = `error: ${e.code}${e.reason ? ' ' + e.reason : ''}`;
  if (e.violations.length === 0) return `${head}: ${e.message}`;
  // For bad input the message only lists the violations: print those, each with its rule.
  return `${head}: ${e.violations.map((v) => `${v.field}: ${v.description} (${v.reason})`).join('; ')}`;
}

/** The API token, found as mirrorctl finds it: MIRROR_TOKEN, MIRROR_TOKEN_FILE, then the
 * admin token the server writes on first start (./.mirror-data/admin-token). */
function apiToken() {
  if (process.env.MIRROR_TOKEN) return process.env.MIRROR_TOKEN.trim();
  const file = process.env.MIRROR_TOKEN_FILE || path.join('.mirror-data', 'admin-token');
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}

// Sent with every call: `authorization: Bearer <token>` (health and reflection need none).
const AUTH = new grpc.Metadata();
const TOKEN = apiToken();
if (TOKEN) AUTH.set('authorization', `Bearer ${TOKEN}`);

/** A unary call as a promise. */
function call(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, AUTH, {deadline: Date.now() + 30_000}, (err, response) =>
      err ? reject(err) : resolve(response),
    );
  });
}

/** Create, or reuse when it already exists (ALREADY_EXISTS), so the example can run twice. */
async function ensure(client, method, request, name) {
  try {
    await call(client, method, request);
    console.log(`created ${name}`);
  } catch (err) {
    if (err.code !== grpc.status.ALREADY_EXISTS) throw err;
    console.log(`exists ${name}`);
  }
}

/** Stream the sync's events to the end; resolve with the last task snapshot. */
function followSync(syncs, request) {
  return new Promise((resolve, reject) => {
    let last = null;
    const stream = syncs.Sync(request, AUTH);
    stream.on('data', (event) => {
      last = event.task;
      const stages = event.task.progress_reports
        .map((r) => `${r.code} ${r.done}/${r.total} ${r.unit}`)
        .join('; ');
      const warning = event.kind === 'TASK_EVENT_KIND_WARNING' ? ` warning: ${event.warning}` : '';
      console.log(`event ${event.kind} ${event.task.state}${warning}${stages ? ' ' + stages : ''}`);
    });
    stream.on('error', reject);
    stream.on('end', () => resolve(last));
  });
}

async function main(argv) {
  const [server, url, upstreamName, repository, remote, includeTags = ''] = argv;
  if (!remote) {
    console.error('usage: node sync.js SERVER UPSTREAM_URL UPSTREAM_NAME REPOSITORY REMOTE [INCLUDE_TAGS]');
    return 2;
  }
  const credentials = grpc.credentials.createInsecure();
  const repositories = new mirror.RepositoryService(server, credentials);
  const remotes = new mirror.RemoteService(server, credentials);
  const syncs = new mirror.SyncService(server, credentials);
  const versions = new mirror.VersionService(server, credentials);
  try {
    await ensure(repositories, 'CreateRepository', {repository_id: repository}, `repositories/${repository}`);
    const remoteFields = {
      url,
      upstream_name: upstreamName,
      policy: 'POLICY_IMMEDIATE', // enums: String lets requests use names too
      include_tags: includeTags ? includeTags.split(',') : [],
    };
    await ensure(remotes, 'CreateRemote', {remote_id: remote, remote: remoteFields}, `remotes/${remote}`);
    const task = await followSync(syncs, {
      repository: `repositories/${repository}`,
      remote: `remotes/${remote}`,
    });
    if (task === null || task.state !== 'TASK_STATE_COMPLETED') {
      const why = task && task.error ? `${task.error.code} ${task.error.reason}: ${task.error.message}` : 'no final state';
      console.error(`error: sync ended ${task ? task.state : 'without events'}: ${why}`);
      return 1;
    }
    const created = task.created_resources.find((name) => name.includes('/versions/'));
    const name = created ?? `repositories/${repository}/versions/latest`;
    const {version} = await call(versions, 'GetVersion', {name});
    console.log(`version ${version.name}${created ? '' : ' (unchanged: no new version)'}`);
    const summary = version.content_summary;
    const types = [...new Set([...Object.keys(summary.added), ...Object.keys(summary.removed), ...Object.keys(summary.present)])].sort();
    for (const type of types) {
      // map<string, int64> values arrive as strings (longs: String)
      const [added, removed, present] = [summary.added, summary.removed, summary.present].map((m) => m[type] ?? '0');
      console.log(`${type} added=${added} removed=${removed} present=${present}`);
    }
    return 0;
  } catch (err) {
    console.error(errorLine(err));
    return 1;
  } finally {
    for (const client of [repositories, remotes, syncs, versions]) client.close();
  }
}

main(process.argv.slice(2)).then((status) => {
  process.exitCode = status;
});
