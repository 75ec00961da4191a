import pino from 'pino';

/**
 * Where the service's JSON log goes: standard output, written in blocks.
 * One line per request is the request log; written on its own, each line is
 * a write(2) on the request's path that also wakes whatever reads the pipe
 * (the container runtime), which on a busy machine costs the event loop a
 * time slice per request. Buffered, lines leave in blocks of 4 KiB or at
 * most `flushMs` after they were logged, and whatever is still buffered is
 * written when the process exits (pino flushes on `exit`, after an uncaught
 * error too); only a hard kill (SIGKILL, a native crash) loses the last
 * `flushMs` of lines. If standard output stops draining, at most 16 MiB are
 * held and further lines dropped, rather than the event loop blocking on a
 * full pipe. `flushMs` 0: each line is written at once, synchronously.
 */
export function logDestination(flushMs: number, fd = 1): pino.DestinationStream {
  if (flushMs <= 0) return pino.destination({ dest: fd, sync: true });
  return pino.destination({ dest: fd, sync: false, minLength: 4096, maxLength: 16 << 20, periodicFlush: flushMs });
}
