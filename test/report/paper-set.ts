import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The default set as served up to version 1.2.0, whose S2SNet had the
 * paper's stage 2 (`paper-ce`). The reports made before 1.3.0 evaluated it;
 * since 1.3.0 the default set's S2SNet is adversarially trained, so those
 * reports are checked against this record instead: its manifest and S2SNet
 * are kept in reports/fashion-mnist/models/, and its classifier, autoencoder
 * and smoothing denoiser are the served set's files, unchanged.
 */
export const ROOT = join(__dirname, '..', '..');
export const PAPER_SET_DIR = join(ROOT, 'reports', 'fashion-mnist', 'models');
export const SERVED_SET_DIR = join(ROOT, 'models', 'fashion-mnist');

export interface SetManifest {
  name: string;
  version: string;
  files: Record<string, { path: string; sha256: string }>;
  metrics: { top1: Record<string, number>; psnrDb: Record<string, number> };
}

/**
 * The default set as served in 1.3.0, whose S2SNet's decoder was
 * adversarially trained with a fifth of each batch adversarial
 * (`ADVERSARIAL_FS_STAGE2`). The reports made while it was served are checked
 * against this record since 1.4.0: its manifest and S2SNet are kept in
 * reports/fashion-mnist-worst-case-1.3.0/models/, the rest are the served files.
 */
export const ADV_FS_SET_DIR = join(ROOT, 'reports', 'fashion-mnist-worst-case-1.3.0', 'models');

export const paperSetManifest = (): SetManifest => JSON.parse(readFileSync(join(PAPER_SET_DIR, 'manifest.json'), 'utf8')) as SetManifest;
export const servedSetManifest = (): SetManifest => JSON.parse(readFileSync(join(SERVED_SET_DIR, 'manifest.json'), 'utf8')) as SetManifest;
export const advFsSetManifest = (): SetManifest => JSON.parse(readFileSync(join(ADV_FS_SET_DIR, 'manifest.json'), 'utf8')) as SetManifest;

/**
 * The default set as served in 1.4.0, whose S2SNet's decoder was trained with
 * TRADES' loss, encoder frozen (`TRADES_STAGE2`). The reports made while it
 * was served are checked against this record since 1.5.0: its manifest and
 * S2SNet are kept in reports/fashion-mnist-worst-case-1.4.0/models/, the rest
 * are the served files.
 */
export const TRADES_SET_DIR = join(ROOT, 'reports', 'fashion-mnist-worst-case-1.4.0', 'models');
export const tradesSetManifest = (): SetManifest => JSON.parse(readFileSync(join(TRADES_SET_DIR, 'manifest.json'), 'utf8')) as SetManifest;
