import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EnsembleResults } from '../evaluation/ensemble';
import { UserError } from '../util/errors';
import { AblationEntry, ablationMarkdown } from './ablation';
import { readEnsembleResults } from './ensemble-summary';
import { ENCODER_VARIANT_RECORD } from '../pipeline/recipes/recipe';

/**
 * Reads an ablation folder and rewrites the table block of its README:
 *
 *   DIR/baseline/ensemble.json      the run that holds f ∘ AE (and the committed f ∘ s)
 *   DIR/<recipe>/ensemble.json      `s2s eval --attacks ensemble` on the recipe's set
 *   DIR/<recipe>/manifest.json      the set's manifest (clean top-1, training settings)
 *   DIR/<recipe>/detector.json      `s2s eval --attacks bim --settings undefended --eps 0.05` (its detection AUC)
 *   DIR/<recipe>/train.json         the `s2s train s2snet` summary (wall and CPU seconds), if the recipe was trained here
 *   DIR/<recipe>/variant.txt        one line on how the model differs from the paper's S2SNet beyond its recipe (e.g. its topology), if it does
 *
 * Recipes appear in the order of DIR/order.json (a list of folder names) when present.
 */
const START = '<!-- ablation:table -->';
const END = '<!-- /ablation:table -->';

function json<T>(path: string): T | null {
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as T) : null;
}

/** A recipe's description, plus what stage 2 trained when that is not the paper's decoder alone (the description is the catalogue's and does not say). */
function describe(description: string, trained: string | undefined): string {
  return trained === ENCODER_VARIANT_RECORD ? `${description} — ${trained}` : description;
}

export function readAblation(dir: string): { baseline: EnsembleResults; entries: AblationEntry[] } {
  const baseline = readEnsembleResults(join(dir, 'baseline', 'ensemble.json'));
  const order = json<string[]>(join(dir, 'order.json')) ?? readdirSync(dir).filter((d) => existsSync(join(dir, d, 'ensemble.json')) && d !== 'baseline');
  const entries = order.map((name): AblationEntry => {
    const d = join(dir, name);
    const manifest = json<{ description?: string; metrics?: { top1?: { s2snet?: number }; training?: { s2snet?: { description?: string; trained?: string } } } }>(join(d, 'manifest.json'));
    const detector = json<{ entries: { attack: string; setting: string; eps: number; noise: string; detectionAuc: number | null }[] }>(join(d, 'detector.json'));
    const train = json<{ steps: number; seconds: number; cpuSeconds?: number; recipe?: { batchSize?: number; description?: string; loss?: string } }>(join(d, 'train.json'));
    const variantPath = join(d, 'variant.txt');
    const variant = existsSync(variantPath) ? readFileSync(variantPath, 'utf8').trim() : '';
    const auc = detector?.entries.find((e) => e.attack === 'bim' && e.setting === 'undefended' && e.eps === 0.05 && e.noise === 'none')?.detectionAuc ?? null;
    return {
      recipe: name,
      description: describe(manifest?.metrics?.training?.s2snet?.description ?? train?.recipe?.description ?? manifest?.description ?? '', manifest?.metrics?.training?.s2snet?.trained) + (variant ? ` — ${variant}` : ''),
      ensemble: readEnsembleResults(join(d, 'ensemble.json')),
      cleanTop1: manifest?.metrics?.top1?.s2snet ?? null,
      detectorAuc: auc,
      training: train ? { steps: train.steps, batch: train.recipe?.batchSize ?? 0, pairs: train.recipe?.loss === 'trades', seconds: train.seconds, cpuSeconds: train.cpuSeconds ?? 0 } : null,
    };
  });
  return { baseline, entries };
}

export function writeAblationReadme(dir: string): string {
  const path = join(dir, 'README.md');
  if (!existsSync(path)) throw new UserError(`${path} does not exist; write its prose first, with ${START} … ${END} where the table goes`);
  const text = readFileSync(path, 'utf8');
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a < 0 || b < a) throw new UserError(`${path} has no ${START} … ${END} block`);
  const { baseline, entries } = readAblation(dir);
  const next = `${text.slice(0, a + START.length)}\n${ablationMarkdown(entries, baseline)}${text.slice(b)}`;
  writeFileSync(path, next);
  return path;
}
