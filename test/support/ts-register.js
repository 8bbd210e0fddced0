/*
 * Lets a child process of a test run the TypeScript sources as they are (`node -r ./test/support/ts-register.js
 * src/main.ts`): each .ts file is transpiled alone when required, as ts-jest does for the tests themselves (the
 * project compiles with isolatedModules, so nothing needs the whole program).
 */
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const ts = require('typescript');

const root = join(__dirname, '..', '..');
const { config } = ts.readConfigFile(join(root, 'tsconfig.json'), ts.sys.readFile);
const { options } = ts.convertCompilerOptionsFromJson(config.compilerOptions, root);
const compilerOptions = { ...options, sourceMap: false, inlineSourceMap: true, incremental: false };
delete compilerOptions.tsBuildInfoFile;

require.extensions['.ts'] = (module, filename) => {
  const { outputText } = ts.transpileModule(readFileSync(filename, 'utf8'), { compilerOptions, fileName: filename });
  module._compile(outputText, filename);
};
