#!/usr/bin/env node
// ortrun.js — run an ONNX model with onnxruntime-node (the oracle bqc is compared against).
//
//   node tools/ort/ortrun.js MODEL.onnx (--inputs DIR | -i NAME=FILE.npy ...) -o OUTDIR [--threads N]
//
// Inputs are .npy files (DIR/<input name>.npy, or named one by one with -i); every output is
// written as OUTDIR/<output name>.npy ('/' in a name becomes '_'). CPU only, graph
// optimisation level 'basic' (constant folding and the like, none of ORT's fusions that
// change numerics), intra-op threads N (default 1), sequential execution.
//
// The .npy reader/writer is here (format 1.0-3.0, little-endian C order): float32, float64,
// int64 (BigInt64Array), int32, bool and uint8 — what ONNX models of this project consume and
// produce. Any problem (no such input, a file that is not .npy, a dtype ORT rejects) is one
// line on stderr and exit status 1; bad usage is exit status 2.
'use strict';

const fs = require('fs');
const path = require('path');

const PROG = 'ortrun';
const USAGE = `usage: node ${path.relative(process.cwd(), __filename) || 'ortrun.js'} MODEL.onnx ` +
  '(--inputs DIR | -i NAME=FILE.npy ...) -o OUTDIR [--threads N]';

class UserError extends Error {}

function die(msg, status = 1) {
  process.stderr.write(`${PROG}: error: ${msg}\n`);
  process.exit(status);
}

// ---- .npy ---------------------------------------------------------------------------------
// dtype table: npy descr (without byte-order char) -> ORT tensor type, typed array, item size
const DTYPES = [
  // descr  ort type    array           size
  ['f4', 'float32', Float32Array, 4],
  ['f8', 'float64', Float64Array, 8],
  ['i8', 'int64', BigInt64Array, 8],
  ['i4', 'int32', Int32Array, 4],
  ['b1', 'bool', Uint8Array, 1],
  ['u1', 'uint8', Uint8Array, 1],
];

function readNpy(file) {
  let buf;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new UserError(`${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  }
  const bad = (why) => new UserError(`${file}: not a valid .npy file: ${why}`);
  if (buf.length < 10 || buf[0] !== 0x93 || buf.toString('latin1', 1, 6) !== 'NUMPY') {
    throw bad('missing the \\x93NUMPY magic');
  }
  const major = buf[6];
  let hlen, start;
  if (major === 1) {
    hlen = buf.readUInt16LE(8); start = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) throw bad('truncated header');
    hlen = buf.readUInt32LE(8); start = 12;
  } else {
    throw bad(`unsupported format version ${major}`);
  }
  if (start + hlen > buf.length) throw bad('truncated header');
  const header = buf.toString(major === 3 ? 'utf8' : 'latin1', start, start + hlen);
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shapeM = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shapeM) throw bad(`cannot parse header ${JSON.stringify(header.trim())}`);
  if (fortran[1] === 'True') throw new UserError(`${file}: Fortran-order arrays are not supported (save a C-contiguous array)`);
  const order = descr[1][0];
  const code = descr[1].slice(1);
  const row = DTYPES.find((r) => r[0] === code);
  if (!row || !(order === '<' || order === '|' || order === '=' || (order === '>' && row[3] === 1))) {
    throw new UserError(`${file}: unsupported dtype '${descr[1]}' (supported: <f4 <f8 <i8 <i4 |b1 |u1)`);
  }
  const dims = shapeM[1].split(',').map((s) => s.trim()).filter((s) => s.length).map((s) => {
    if (!/^\d+$/.test(s)) throw bad(`bad shape entry '${s}'`);
    return Number(s);
  });
  const count = dims.reduce((a, b) => a * b, 1);
  const nbytes = count * row[3];
  const off = start + hlen;
  if (buf.length - off !== nbytes) {
    throw bad(`shape [${dims}] of ${descr[1]} needs ${nbytes} data bytes, the file has ${buf.length - off}`);
  }
  // Copy into a fresh (aligned) ArrayBuffer: typed arrays need element-aligned offsets.
  const ab = buf.buffer.slice(buf.byteOffset + off, buf.byteOffset + off + nbytes);
  return { type: row[1], data: new row[2](ab), dims };
}

function npyBytes(type, data, dims) {
  const row = DTYPES.find((r) => r[1] === type);
  if (!row) throw new UserError(`output of type '${type}' cannot be written as .npy by this tool`);
  const descr = (row[3] === 1 ? '|' : '<') + row[0];
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  // numpy pads with spaces and a final newline so that data starts on a 64-byte boundary
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre[0] = 0x93;
  pre.write('NUMPY', 1, 'latin1');
  pre[6] = 1; pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), body]);
}

// ---- command line -------------------------------------------------------------------------
function parseArgs(argv) {
  const a = { model: null, inputsDir: null, inputs: [], out: null, threads: 1 };
  const need = (i, flag) => {
    if (i + 1 >= argv.length) die(`${flag} needs a value\n${USAGE}`, 2);
    return argv[i + 1];
  };
  for (let i = 0; i < argv.length; i++) {
    const s = argv[i];
    if (s === '-h' || s === '--help') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else if (s === '--inputs') {
      a.inputsDir = need(i, s); i++;
    } else if (s === '-i' || s === '--input') {
      const v = need(i, s); i++;
      const eq = v.indexOf('=');
      if (eq <= 0) die(`${s} ${v}: expected NAME=FILE.npy`, 2);
      a.inputs.push([v.slice(0, eq), v.slice(eq + 1)]);
    } else if (s === '-o' || s === '--output') {
      a.out = need(i, s); i++;
    } else if (s === '--threads') {
      const v = need(i, s); i++;
      if (!/^[1-9]\d*$/.test(v)) die(`--threads ${v}: expected a positive integer`, 2);
      a.threads = Number(v);
    } else if (s.startsWith('-')) {
      die(`unknown option '${s}'\n${USAGE}`, 2);
    } else if (a.model === null) {
      a.model = s;
    } else {
      die(`unexpected argument '${s}'\n${USAGE}`, 2);
    }
  }
  if (!a.model) die(`no model given\n${USAGE}`, 2);
  if (!a.out) die(`no output folder given (-o OUTDIR)\n${USAGE}`, 2);
  if (!a.inputsDir && a.inputs.length === 0) die(`no inputs given (--inputs DIR or -i NAME=FILE.npy)\n${USAGE}`, 2);
  return a;
}

// Map each model input name to its .npy file, or explain what is missing / unknown.
function resolveInputs(a, inputNames) {
  const files = new Map();
  if (a.inputsDir) {
    let entries;
    try {
      entries = fs.readdirSync(a.inputsDir);
    } catch (e) {
      throw new UserError(`--inputs ${a.inputsDir}: ${e.code === 'ENOENT' ? 'no such folder' : e.message}`);
    }
    for (const f of entries) {
      if (!f.endsWith('.npy')) continue;
      const name = f.slice(0, -4);
      if (!inputNames.includes(name)) {
        throw new UserError(`${path.join(a.inputsDir, f)}: the model has no input '${name}' ` +
          `(its inputs: ${inputNames.join(', ')})`);
      }
      files.set(name, path.join(a.inputsDir, f));
    }
  }
  for (const [name, file] of a.inputs) {
    if (!inputNames.includes(name)) {
      throw new UserError(`-i ${name}=${file}: the model has no input '${name}' (its inputs: ${inputNames.join(', ')})`);
    }
    files.set(name, file);
  }
  const missing = inputNames.filter((n) => !files.has(n));
  if (missing.length) {
    const where = a.inputsDir ? ` (no ${missing.map((n) => n + '.npy').join(', ')} in ${a.inputsDir})` : '';
    throw new UserError(`missing model input(s): ${missing.join(', ')}${where}`);
  }
  return files;
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  let ort;
  try {
    ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));
  } catch (e) {
    die(`cannot load onnxruntime-node from ${path.join(__dirname, 'node_modules')}: run scripts/setup (${e.message.split('\n')[0]})`);
  }
  if (!fs.existsSync(a.model)) die(`${a.model}: no such file`);

  let session;
  const t0 = process.hrtime.bigint();
  try {
    session = await ort.InferenceSession.create(a.model, {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'basic',
      intraOpNumThreads: a.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
    });
  } catch (e) {
    die(`${a.model}: onnxruntime cannot load the model: ${String(e.message || e).split('\n')[0]}`);
  }
  const feeds = {};
  try {
    const files = resolveInputs(a, session.inputNames);
    for (const [name, file] of files) {
      const t = readNpy(file);
      feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
    }
  } catch (e) {
    if (e instanceof UserError) die(e.message);
    throw e;
  }
  const t1 = process.hrtime.bigint();
  let results;
  try {
    results = await session.run(feeds);
  } catch (e) {
    const sig = Object.entries(feeds).map(([n, t]) => `${n} ${t.type}[${t.dims}]`).join(', ');
    die(`${a.model}: onnxruntime run failed: ${String(e.message || e).split('\n')[0]} (inputs: ${sig})`);
  }
  const t2 = process.hrtime.bigint();
  fs.mkdirSync(a.out, { recursive: true });
  try {
    for (const name of session.outputNames) {
      const t = results[name];
      const file = path.join(a.out, name.replace(/\//g, '_') + '.npy');
      fs.writeFileSync(file, npyBytes(t.type, t.data, t.dims));
    }
  } catch (e) {
    if (e instanceof UserError) die(e.message);
    throw e;
  }
  const ms = (x) => (Number(x) / 1e6).toFixed(1);
  process.stderr.write(`${PROG}: ${path.basename(a.model)}: ${Object.keys(feeds).length} inputs -> ` +
    `${session.outputNames.length} outputs in ${a.out} (load ${ms(t1 - t0)} ms, run ${ms(t2 - t1)} ms)\n`);
}

main().catch((e) => die(`internal error: ${e.stack || e}`));
