import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** A worker thread's entry: compiled JavaScript in `dir`, or the TypeScript source run through tsx (tests, `tsx` runs). */
export function workerEntry(dir: string, name: string): { file: string; execArgv: string[] } {
  const js = join(dir, `${name}.js`);
  if (existsSync(js)) return { file: js, execArgv: process.execArgv };
  const ts = join(dir, `${name}.ts`);
  const tsx = pathToFileURL(require.resolve('tsx')).href;
  const hasTsx = process.execArgv.some((a, i) => /tsx/.test(a) && (i === 0 || /^--(import|require|loader)/.test(process.execArgv[i - 1]) || a.startsWith('--import=')));
  return { file: ts, execArgv: hasTsx ? process.execArgv : [...process.execArgv, '--import', tsx] };
}
