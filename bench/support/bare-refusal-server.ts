import { createServer } from 'node:http';

/**
 * The floor for bench/refusal-cost.ts: a bare node:http server that answers
 * every request 503 with Retry-After and a JSON error the size of the
 * service's, without reading the body. Whatever a refusal costs here, Node's
 * HTTP stack costs the service too. Prints its port once it listens.
 */
const body = Buffer.from(JSON.stringify({ error: 'queue full (256 of 256 images waiting); retry shortly', code: 'queue_full', requestId: '00000000-0000-4000-8000-000000000000' }));
const server = createServer((_req, res) => {
  res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length, 'retry-after': '1' });
  res.end(body);
});
server.listen(0, '127.0.0.1', () => console.log((server.address() as { port: number }).port));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
