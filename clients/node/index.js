// Node.js client of VideoEditService, loaded at run time from the repo's .proto
// (no generated code): start an edit job, follow WatchStatus, read, cancel.
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.join(__dirname, '..', '..', 'proto');
const PROTO = path.join(PROTO_ROOT, 'videoedit', 'v1', 'video_edit.proto');
const TERMINAL = new Set(['JOB_STATUS_FINISHED', 'JOB_STATUS_FAILED', 'JOB_STATUS_CANCELLED']);

function loadService() {
  const definition = protoLoader.loadSync(PROTO, {
    keepCase: true, // field names as in the .proto (input_video_path), like grpcurl's JSON
    enums: String, // JOB_STATUS_FINISHED rather than 8
    longs: Number,
    defaults: true,
    oneofs: true,
    includeDirs: [PROTO_ROOT], // imports are named from the proto root (videoedit/v1/geometry.proto)
  });
  return grpc.loadPackageDefinition(definition).videoedit.v1.VideoEditService;
}

/**
 * A VideoEditService client.
 * @param {string} address host:port of the orchestrator
 * @param {{token?: string, caPem?: Buffer}} options bearer token; CA certificate for TLS
 */
function createClient(address, options = {}) {
  const Service = loadService();
  const credentials = options.caPem ? grpc.credentials.createSsl(options.caPem) : grpc.credentials.createInsecure();
  const stub = new Service(address, credentials, { 'grpc.keepalive_time_ms': 30000 });
  const metadata = () => {
    const md = new grpc.Metadata();
    const token = options.token ?? (process.env.VIDEOEDIT_API_KEY || process.env.VIDEOEDIT_AUTH_TOKEN);
    if (token) md.set('authorization', `Bearer ${token}`);
    return md;
  };
  const unary = (method, request) => new Promise((resolve, reject) => {
    stub[method](request, metadata(), { deadline: Date.now() + 30000 }, (err, reply) => (err ? reject(err) : resolve(reply)));
  });
  return {
    startEdit: (request) => unary('StartEdit', request),
    getStatus: (jobId) => unary('GetStatus', { job_id: jobId }),
    cancelEdit: (jobId) => unary('CancelEdit', { job_id: jobId }),
    listJobs: (request = {}) => unary('ListJobs', request),
    /** Calls onStatus for every status; resolves with the final one. */
    watch(jobId, onStatus = () => {}) {
      return new Promise((resolve, reject) => {
        let last = null;
        const call = stub.WatchStatus({ job_id: jobId }, metadata());
        call.on('data', (status) => { last = status; onStatus(status); });
        call.on('error', reject);
        call.on('end', () => (last && TERMINAL.has(last.status) ? resolve(last)
          : reject(new Error(`WatchStatus for ${jobId} ended before the job did`))));
      });
    },
    close: () => stub.close(),
  };
}

module.exports = { createClient, TERMINAL };
