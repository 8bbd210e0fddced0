import 'reflect-metadata';
import type { OpenAPIObject } from '@nestjs/swagger';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SandboxModule } from '../sandbox/sandbox.module';
import type { Sandbox } from '../sandbox/sandbox';
import { AppConfig } from '../src/config/app-config';
import { createPreviewDocument, serializeDocument } from '../src/openapi/openapi-document';

/** Where the committed document lives: the repository's root. */
export const OPENAPI_JSON = join(__dirname, '..', 'openapi.json');

/**
 * The document openapi.json holds: the API role with the sandbox's routes (served in PROVIDERS_MODE=sandbox), from a
 * fixed environment rather than the process's, so it does not depend on who builds it. The sandbox's providers are
 * never instantiated in preview mode: no emulator is started.
 */
export function buildCommittedDocument(): Promise<OpenAPIObject> {
  const config = AppConfig.fromEnv({ APP_ROLE: 'api', PROVIDERS_MODE: 'sandbox' });
  const sandbox = { emulatorOrigins: [] } as unknown as Sandbox;
  return createPreviewDocument(config, [SandboxModule.forRoot(sandbox, config)]);
}

/**
 * `npm run openapi`: writes openapi.json from the code, with no Postgres, Redis or provider (the application in
 * preview mode). Commit it: `npm test` fails while it differs from the code's document.
 */
async function main(): Promise<void> {
  const document = await buildCommittedDocument();
  writeFileSync(OPENAPI_JSON, serializeDocument(document));
  const operations = Object.values(document.paths).reduce((n, item) => n + Object.keys(item).length, 0);
  process.stdout.write(`wrote ${OPENAPI_JSON}: ${operations} operations\n`);
}

if (require.main === module) {
  main().catch((err: Error) => {
    process.stderr.write(`${err.stack ?? err.message}\n`);
    process.exit(1);
  });
}
