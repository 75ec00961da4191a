import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/**
 * How many cores this process may use: the container's CPU limit (cgroup v2
 * `cpu.max`, or v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us`) rounded up, and
 * never more than the cores the scheduler gives it. A pod limited to 2 CPUs
 * on a 64-core node must not start 64 ONNX Runtime threads: they would be
 * throttled by the quota and slow every batch.
 */
export function allowedCores(readText: (path: string) => string | undefined = tryRead): number {
  const cores = availableParallelism();
  const quota = cgroupQuota(readText);
  return quota === undefined ? cores : Math.max(1, Math.min(cores, Math.ceil(quota)));
}

/** CPU quota in cores, or undefined when there is none. */
export function cgroupQuota(readText: (path: string) => string | undefined = tryRead): number | undefined {
  const v2 = readText('/sys/fs/cgroup/cpu.max');
  if (v2 !== undefined) {
    const [quota, period] = v2.trim().split(/\s+/);
    if (quota === 'max') return undefined;
    const q = Number(quota);
    const p = Number(period ?? 100000);
    return q > 0 && p > 0 ? q / p : undefined;
  }
  const q = Number(readText('/sys/fs/cgroup/cpu/cpu.cfs_quota_us')?.trim());
  const p = Number(readText('/sys/fs/cgroup/cpu/cpu.cfs_period_us')?.trim());
  return q > 0 && p > 0 ? q / p : undefined;
}

function tryRead(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
