import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPreviewDocument, serializeDocument } from '../src/openapi/openapi-document';

/**
 * `npm run openapi`: writes openapi.json (the repository's root) from the code, with no Postgres, Redis or provider
 * (the application in preview mode). Commit it: `npm test` fails while it differs from the code's document.
 */
async function main(): Promise<void> {
  const target = join(__dirname, '..', 'openapi.json');
  const document = await createPreviewDocument();
  writeFileSync(target, serializeDocument(document));
  const operations = Object.values(document.paths).reduce((n, item) => n + Object.keys(item).length, 0);
  process.stdout.write(`wrote ${target}: ${operations} operations\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exit(1);
});
