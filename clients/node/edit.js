#!/usr/bin/env node
// Start an edit job and follow it to its end, printing each status as one JSON line.
//
//   node edit.js --server localhost:50051 VIDEO MASK_PROMPT EDIT_PROMPT \
//       [--job-id ID] [--steps N] [--extra key=value ...]
//
// Exit codes match the Python CLI: 0 finished, 1 failed, 2 bad request, 3 cancelled, 4 unavailable.
'use strict';

const { createClient } = require('./index');

function parseArgs(argv) {
  const args = { server: process.env.VIDEOEDIT_SERVER || 'localhost:50051', extra: {}, positional: [] };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--server') args.server = argv[++i];
    else if (arg === '--job-id') args.jobId = argv[++i];
    else if (arg === '--steps') args.steps = Number(argv[++i]);
    else if (arg === '--extra') {
      const [key, ...rest] = argv[++i].split('=');
      args.extra[key] = rest.join('=');
    } else args.positional.push(arg);
  }
  if (args.positional.length !== 3) {
    console.error('usage: edit.js [--server HOST:PORT] VIDEO MASK_PROMPT EDIT_PROMPT [--job-id ID] [--steps N] [--extra k=v]');
    process.exit(2);
  }
  return args;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const [video, mask, edit] = args.positional;
  const client = createClient(args.server);
  const request = { input_video_path: video, mask_prompt: mask, edit_prompt: edit, job_id: args.jobId || '', extra: args.extra };
  if (args.steps) request.num_inference_steps = args.steps;
  try {
    const started = await client.startEdit(request);
    const final = await client.watch(started.job_id, (status) => console.log(JSON.stringify({
      job_id: status.job_id, status: status.status, progress: status.progress, message: status.message,
    })));
    console.log(JSON.stringify({ final: final.status, output: final.output_video_path, error: final.error }));
    process.exitCode = { JOB_STATUS_FINISHED: 0, JOB_STATUS_FAILED: 1, JOB_STATUS_CANCELLED: 3 }[final.status] ?? 0;
  } catch (err) {
    console.error(`error: ${err.details || err.message}`);
    process.exitCode = err.code === 14 || err.code === 4 ? 4 : 2; // UNAVAILABLE, DEADLINE_EXCEEDED
  } finally {
    client.close();
  }
}

main();
