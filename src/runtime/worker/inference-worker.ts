import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { isUserError } from '../../util/errors';
import { ModelSession } from '../session';
import { ARRAYS, GraphInfo, Reply, Request, WireTensor, WorkerStart, ownBuffer } from './protocol';
import { lowerThreadPriority } from './thread-priority';

/**
 * An inference worker: holds ONNX Runtime sessions by name and runs them on
 * request. `session.run` blocks the thread it is called on for the whole
 * run, which is why it lives here and not on the service's event loop.
 */

const port = parentPort;
if (!port) throw new Error('inference-worker.ts runs inside a worker thread');

const sessions = new Map<string, ModelSession>();

const send = (reply: Reply, transfer: ArrayBuffer[] = []) => port.postMessage(reply, transfer);

const logger = {
  info: (obj: object, msg?: string) => send({ kind: 'log', level: 'info', obj, msg: msg ?? '' }),
  warn: (obj: object, msg?: string) => send({ kind: 'log', level: 'warn', obj, msg: msg ?? '' }),
};

// Before any session exists, so that ORT's intra-op threads, created with the sessions, inherit it.
const start = (workerData ?? {}) as WorkerStart;
if (start.nice) {
  const outcome = lowerThreadPriority(start.nice);
  if (!outcome.applied) logger.warn({ nice: start.nice, reason: outcome.reason }, 'inference threads keep the default priority');
}

function fromWire(t: WireTensor): ort.Tensor {
  const make = ARRAYS[t.type];
  if (!make) throw new Error(`tensor type ${t.type} cannot cross to the inference worker`);
  return new ort.Tensor(t.type as 'float32', new make(t.buffer) as Float32Array, t.dims);
}

function info(s: ModelSession): GraphInfo {
  return {
    provider: s.provider,
    inputNames: [...s.inputNames],
    outputNames: [...s.outputNames],
    inputs: s.session.inputMetadata.map((m) => (m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : { name: m.name })),
  };
}

async function handle(req: Request): Promise<void> {
  switch (req.kind) {
    case 'load': {
      const s = await ModelSession.create(req.model, { ...req.options, logger });
      await sessions.get(req.name)?.release();
      sessions.set(req.name, s);
      send({ kind: 'loaded', id: req.id, info: info(s) });
      return;
    }
    case 'run': {
      const s = sessions.get(req.name);
      if (!s) throw new Error(`no graph '${req.name}' is loaded in this worker`);
      const feeds: Record<string, ort.Tensor> = {};
      for (const [k, v] of Object.entries(req.feeds)) feeds[k] = fromWire(v);
      const out = await s.run(feeds, req.outputs);
      const outputs: Record<string, WireTensor> = {};
      const transfer: ArrayBuffer[] = [];
      for (const [k, t] of Object.entries(out)) {
        const buffer = ownBuffer(t.data as ArrayBufferView);
        outputs[k] = { type: t.type, dims: [...t.dims], buffer };
        transfer.push(buffer);
      }
      send({ kind: 'ran', id: req.id, outputs }, transfer);
      return;
    }
    case 'release': {
      await sessions.get(req.name)?.release();
      sessions.delete(req.name);
      send({ kind: 'released', id: req.id });
      return;
    }
  }
}

port.on('message', (req: Request) => {
  handle(req).catch((e: unknown) => {
    const error = { message: (e as Error)?.message ?? String(e), ...(isUserError(e) ? { userStatus: e.statusCode } : {}) };
    send({ kind: 'failed', id: req.id, error });
  });
});
