import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface RenderedReport {
  charts: { name: string | null; width: number; height: number; marks: number }[];
  images: { alt: string; ok: boolean }[];
  /** console errors, page errors and failed requests */
  errors: string[];
}

/** Opens a report in Debian's headless Chromium and reads back what a person would see. */
export async function openInChromium(file: string): Promise<RenderedReport> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium; .ci/run does)`);
  const profile = mkdtempSync(join(tmpdir(), 's2s-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()}`));
    await page.goto(`file://${file}`, { waitUntil: 'load' });
    const charts = await page.$$eval('figure.chart', (figs) =>
      figs.map((f) => {
        const svg = f.querySelector('svg');
        const box = svg?.getBoundingClientRect();
        return { name: f.getAttribute('data-chart'), width: box?.width ?? 0, height: box?.height ?? 0, marks: svg ? svg.querySelectorAll('.mark-line path, .mark-symbol path, .mark-rect path, .mark-text text').length : 0 };
      }),
    );
    const images = await page.$$eval('img', (imgs) => imgs.map((i) => ({ alt: i.alt, ok: i.complete && i.naturalWidth > 0 })));
    return { charts, images, errors };
  } finally {
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
  }
}
