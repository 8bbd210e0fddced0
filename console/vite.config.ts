import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';
import { taskFormsFromFile } from './task-forms.ts';

const DOCUMENT = fileURLToPath(new URL('../openapi.json', import.meta.url));
const VIRTUAL = 'virtual:task-forms';

/** `virtual:task-forms`: the submit forms read from the committed OpenAPI document (only what the forms need). */
function taskFormsPlugin(): Plugin {
  return {
    name: 'task-forms',
    resolveId: (id) => (id === VIRTUAL ? `\0${VIRTUAL}` : undefined),
    load(id) {
      if (id !== `\0${VIRTUAL}`) return undefined;
      this.addWatchFile(DOCUMENT);
      return `export default ${JSON.stringify(taskFormsFromFile(DOCUMENT))};`;
    },
  };
}

export default defineConfig({
  base: '/console/',
  plugins: [taskFormsPlugin()],
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', sourcemap: false },
  server: { proxy: { '/api': 'http://127.0.0.1:3000', '/files': 'http://127.0.0.1:3000' } },
});
