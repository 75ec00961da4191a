import type { FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify';
import { UserError } from '../../util/errors';
import type { Config } from '../config';
import { OpenApiDoc, route } from '../openapi';
import { budgetLeft } from '../pipeline';
import { countDetections, rejectFlagged } from '../routes/classify';
import { HEADER_LENGTH, binaryInputs, encodeInferResponse, splitInferBody, wantsBinary } from './binary-body';
import { runInfer } from './infer';
import { inferRequestValidator, parseInferJson } from './infer-request';
import { certifiedInfer, certifiedMetadata, certifiedModel } from './certified';
import { repositoryRoutes } from './repository';
import { protocolJsonLimits } from '../inputs';
import { modelAt, modelMetadata, serverExtensions, SERVER_NAME, SERVER_VERSION } from './metadata';

/**
 * Open Inference Protocol (KServe V2) over HTTP: server and model metadata,
 * model readiness and inference, each model route also under
 * /v2/models/{name}/versions/{version}. Inference takes the JSON request with
 * or without a Content-Type (as Triton does) and the binary tensor data
 * extension; see docs/v2-protocol.md.
 */

interface ModelParams {
  name: string;
  version?: string;
}

/** Media types that are certainly not an inference request: a likely mix-up with /v1/classify. */
const NOT_INFER = /^(image\/|multipart\/|text\/html|application\/xml)/i;

export async function v2Routes(app: FastifyInstance, opts: { doc: OpenApiDoc; config: Config }): Promise<void> {
  const { config, doc } = opts;
  const validate = inferRequestValidator(doc);
  // The same JSON bounds as the other routes' V2-shaped bodies (this scope parses its own bodies).
  const jsonLimits = () => protocolJsonLimits({ bodyLimit: config.bodyLimit, maxParts: config.maxParts, maxImageValues: () => Math.max(1, ...app.models.all().map((m) => m.imageSize)) });

  // This scope reads every infer body as bytes and parses it itself: Triton's
  // clients send JSON without a Content-Type, and binary tensors after it.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: config.bodyLimit }, (_req, body, done) => done(null, body));

  /** An operation and its /versions/{version} twin, one handler. */
  const both = (operationId: string, handler: RouteHandlerMethod, bodyless = false) => {
    for (const id of [operationId, `${operationId}Version`]) {
      const r = route(doc, id);
      // Bodies are validated by the handler (they may be binary), not by Fastify.
      if (bodyless) delete (r.schema as { body?: unknown }).body;
      app.route({ ...r, handler });
    }
  };

  app.route({
    ...route(doc, 'serverMetadata'),
    handler: async () => ({ name: SERVER_NAME, version: SERVER_VERSION, extensions: serverExtensions(config.modelControl) }),
  });

  both('modelMetadata', async (req) => {
    const p = req.params as ModelParams;
    const certified = certifiedModel(app, p.name, p.version);
    return certified ? certifiedMetadata(certified) : modelMetadata(modelAt(app.models, p.name, p.version));
  });

  both('modelReady', async (req, reply) => {
    const p = req.params as ModelParams;
    const m = certifiedModel(app, p.name, p.version) ?? modelAt(app.models, p.name, p.version);
    const ready = app.lifecycle.ready;
    return reply.code(ready ? 200 : 503).send({ name: m.name, ready });
  });

  both(
    'modelInfer',
    async (req: FastifyRequest, reply: FastifyReply) => {
      const p = req.params as ModelParams;
      const certified = certifiedModel(app, p.name, p.version);
      const model = certified?.served ?? modelAt(app.models, p.name, p.version);
      const type = req.headers['content-type'] ?? '';
      if (NOT_INFER.test(type)) {
        throw new UserError(`Content-Type ${type.split(';')[0]} is not an inference request: send the JSON request (any or no Content-Type), optionally followed by binary tensors; images go to /v1/classify`, 415);
      }
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const { json, binary } = splitInferBody(body, req.headers[HEADER_LENGTH]);
      const request = validate(parseInferJson(json, jsonLimits()));
      const raws = binaryInputs(request.inputs, binary);
      const outputParams = new Map(request.outputs?.map((o) => [o.name, o.parameters]));
      const binaryOf = (o: { name: string }) => wantsBinary(request.parameters, outputParams.get(o.name));
      const call = {
        parameters: request.parameters,
        inputs: request.inputs.map((input, i) => ({ name: input.name, datatype: input.datatype, shape: input.shape, data: input.data, raw: raws[i] })),
        outputs: request.outputs?.map((o) => o.name),
        budgetMs: budgetLeft(reply, config.requestTimeoutMs),
        record: req.s2sRecord,
      };
      if (certified) {
        const result = await certifiedInfer(app, certified, call, config);
        const head = { model_name: certified.name, model_version: certified.served.version, ...(request.id !== undefined ? { id: request.id } : {}), parameters: result.parameters };
        const encoded = encodeInferResponse(head, result.outputs, binaryOf);
        if (encoded.headerLength === undefined) return encoded.body;
        return reply.type('application/octet-stream').header(HEADER_LENGTH, String(encoded.headerLength)).send(encoded.body);
      }
      const result = await runInfer({ model, ...call }, config, app.metrics);
      countDetections(app, req, model, result.detections);
      const rejected = rejectFlagged(app, req, reply, result.detections, config);
      if (rejected) return rejected;
      const head = {
        model_name: model.name,
        model_version: model.version,
        ...(request.id !== undefined ? { id: request.id } : {}),
        parameters: { noise_sigma: result.sigma, detection_threshold: model.threshold },
      };
      const encoded = encodeInferResponse(head, result.outputs, binaryOf);
      if (encoded.headerLength === undefined) return encoded.body;
      return reply.type('application/octet-stream').header(HEADER_LENGTH, String(encoded.headerLength)).send(encoded.body);
    },
    true,
  );

  await app.register(repositoryRoutes, opts);
}
