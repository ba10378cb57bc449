// The layers of docs/architecture.md, enforced: dependencies point down
// (commands/cli → app → core | postgres | catalog | repository → storage), core does no I/O,
// and there are no cycles.
const layer = (name) => `^src/${name}/`;

module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', from: {}, to: { circular: true } },
    {
      name: 'core-is-pure',
      comment: 'core/ holds pure logic: no node built-ins that do I/O, no other layer but errors',
      severity: 'error',
      from: { path: layer('core') },
      to: { pathNot: ['^src/core/', '^src/errors\\.ts$'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'lower-layers-do-not-reach-up',
      severity: 'error',
      from: { path: '^src/(core|postgres|catalog|repository|storage)/' },
      to: { path: '^src/(app|commands|cli)/' },
    },
    {
      name: 'storage-is-the-bottom',
      severity: 'error',
      from: { path: layer('storage') },
      to: { path: '^src/(core|postgres|catalog|repository)/' },
    },
    {
      name: 'side-layers-stay-apart',
      comment: 'postgres, catalog and repository do not import each other',
      severity: 'error',
      from: { path: '^src/(postgres|catalog|repository)/' },
      to: { path: '^src/(postgres|catalog|repository)/', pathNot: '^src/$1/' },
    },
    {
      name: 'app-does-not-use-commands',
      severity: 'error',
      from: { path: layer('app') },
      to: { path: '^src/(commands|cli)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
