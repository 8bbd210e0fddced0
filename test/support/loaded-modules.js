// Preloaded (NODE_OPTIONS=--require) into a platform process by test/role-modules.e2e.spec.ts: on SIGUSR2 the process
// writes every file it has required so far, as one line of JSON after "loaded-modules: ".
process.on('SIGUSR2', () => {
  process.stdout.write(`loaded-modules: ${JSON.stringify(Object.keys(require.cache))}\n`);
});
