import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, FastifySchema } from 'fastify';
import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { parse } from 'yaml';
import { PACKAGE_ROOT } from './config';

/**
 * openapi.yaml is the contract: routes take their request and response
 * schemas from it by operationId, and /docs renders it as it is.
 */

export type OpenApiDoc = {
  openapi: string;
  info: { version: string; title: string };
  paths: Record<string, Record<string, Operation>>;
  components: Record<string, Record<string, unknown>>;
};

interface Parameter {
  name: string;
  in: 'query' | 'path' | 'header' | 'cookie';
  required?: boolean;
  schema: object;
  description?: string;
}

interface Operation {
  operationId: string;
  parameters?: Array<Parameter | { $ref: string }>;
  requestBody?: { content: Record<string, { schema: object }> };
  responses: Record<string, { content?: Record<string, { schema: object }> } | { $ref: string }>;
}

export const OPENAPI_PATH = join(PACKAGE_ROOT, 'openapi.yaml');

export function loadOpenApi(path = OPENAPI_PATH): OpenApiDoc {
  return parse(readFileSync(path, 'utf8')) as OpenApiDoc;
}

/** Replaces every local `$ref` with (a copy of) its target. The contract has no recursive schemas. */
export function deref<T>(doc: OpenApiDoc, node: T, seen: string[] = []): T {
  if (Array.isArray(node)) return node.map((x) => deref(doc, x, seen)) as T;
  if (node === null || typeof node !== 'object') return node;
  const ref = (node as { $ref?: string }).$ref;
  if (typeof ref === 'string') {
    if (seen.includes(ref)) throw new Error(`openapi.yaml: recursive $ref ${ref}`);
    const target = ref
      .replace(/^#\//, '')
      .split('/')
      .reduce<unknown>((o, k) => (o as Record<string, unknown>)?.[k.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
    if (target === undefined) throw new Error(`openapi.yaml: unresolved $ref ${ref}`);
    return deref(doc, target as T, [...seen, ref]);
  }
  return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, deref(doc, v, seen)])) as T;
}

export function findOperation(doc: OpenApiDoc, operationId: string): { path: string; method: string; op: Operation } {
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (op && typeof op === 'object' && op.operationId === operationId) return { path, method, op };
    }
  }
  throw new Error(`openapi.yaml has no operation '${operationId}'`);
}

/** `/v2/models/{name}` → `/v2/models/:name` */
export function fastifyPath(openapiPath: string): string {
  return openapiPath.replace(/\{([^}]+)\}/g, ':$1');
}

/** The route's Fastify schema (querystring, params, JSON body, JSON responses) from its operation. */
export function routeSchema(doc: OpenApiDoc, operationId: string): FastifySchema {
  const { op } = findOperation(doc, operationId);
  const params = (op.parameters ?? []).map((p) => deref(doc, p) as Parameter);
  const group = (where: Parameter['in']) => {
    const ps = params.filter((p) => p.in === where);
    if (ps.length === 0) return undefined;
    return {
      type: 'object',
      properties: Object.fromEntries(ps.map((p) => [p.name, p.schema])),
      required: ps.filter((p) => p.required).map((p) => p.name),
    };
  };
  const schema: FastifySchema = {};
  const querystring = group('query');
  const pathParams = group('path');
  if (querystring) schema.querystring = querystring;
  if (pathParams) schema.params = pathParams;
  const json = op.requestBody?.content['application/json'];
  if (json) schema.body = { content: { 'application/json': { schema: deref(doc, json.schema) } } };
  const response: Record<string, unknown> = {};
  for (const [status, r] of Object.entries(op.responses)) {
    const resolved = deref(doc, r) as { content?: Record<string, { schema: object }> };
    const body = resolved.content?.['application/json'];
    if (body) response[status] = deref(doc, body.schema);
  }
  if (Object.keys(response).length) schema.response = response;
  return schema;
}

/** The route's method, Fastify path and schema: `app.route({ ...route(doc, 'classify'), handler })`. */
export function route(doc: OpenApiDoc, operationId: string): { method: string; url: string; schema: FastifySchema } {
  const { path, method } = findOperation(doc, operationId);
  return { method: method.toUpperCase(), url: fastifyPath(path), schema: routeSchema(doc, operationId) };
}

/** /docs: Swagger UI over the unmodified openapi.yaml (also at /docs/json and /docs/yaml). */
export const docsPlugin = fp(async (app: FastifyInstance, opts: { doc: OpenApiDoc }) => {
  await app.register(swagger, { mode: 'static', specification: { document: opts.doc as never } });
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { deepLinking: true, tryItOutEnabled: true } });
});
