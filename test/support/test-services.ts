import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { EMBEDDED_SERVICES_MODES, EmbeddedServicesMode } from '../../src/config/env.schema';
import { ProvidedServices, provideServices } from '../../src/embedded-services/embedded-services';
import { Shortfall } from '../../src/embedded-services/missing-services';
import { DEFAULT_TEST_PG_URL, DEFAULT_TEST_REDIS_URL } from './databases';

const ROOT = join(__dirname, '..', '..');

/** The browser of test/dashboard.e2e.spec.ts. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Postgres and Redis for the suite, decided as `npm start` decides (EMBEDDED_SERVICES, `auto` by default): the ones
 * TEST_PG_URL and TEST_REDIS_URL name, else the machine's at the defaults, else servers started here with throwaway
 * data under ./data/test. When the whole suite runs, the tools some of its files need are checked too, so that
 * everything missing is named at once, before any test runs.
 */
export async function provideTestServices(wholeSuite: boolean): Promise<ProvidedServices> {
  const mode = (process.env.EMBEDDED_SERVICES ?? 'auto') as EmbeddedServicesMode;
  if (!EMBEDDED_SERVICES_MODES.includes(mode)) throw new Error(`EMBEDDED_SERVICES must be one of auto, always, never`);
  return provideServices({
    mode,
    urls: {
      databaseUrl: process.env.TEST_PG_URL ?? DEFAULT_TEST_PG_URL,
      redisUrl: process.env.TEST_REDIS_URL ?? DEFAULT_TEST_REDIS_URL,
    },
    defaults: { databaseUrl: DEFAULT_TEST_PG_URL, redisUrl: DEFAULT_TEST_REDIS_URL },
    variables: { databaseUrl: 'TEST_PG_URL', redisUrl: 'TEST_REDIS_URL' },
    dataRoot: join(ROOT, 'data', 'test'),
    durable: false,
    subject: 'The test suite',
    otherShortfalls: wholeSuite ? toolShortfalls() : [],
  });
}

function runs(command: string): boolean {
  return spawnSync(command, ['-version'], { stdio: 'ignore' }).status === 0;
}

function toolShortfalls(): Shortfall[] {
  const shortfalls: Shortfall[] = [];
  if (!runs('ffmpeg') || !runs('ffprobe')) {
    shortfalls.push({
      problem: 'The ffmpeg and ffprobe binaries (the local video provider and its tests) are not on PATH',
      remedy: 'install them with `sudo apt-get install -y ffmpeg` (Debian/Ubuntu) or `brew install ffmpeg` (macOS)',
    });
  }
  if (!existsSync(CHROMIUM)) {
    shortfalls.push({
      problem: `Chromium (the dashboard's browser test) is not at ${CHROMIUM}`,
      remedy: 'install it with `sudo apt-get install -y chromium` (Debian/Ubuntu)',
    });
  }
  return shortfalls;
}
