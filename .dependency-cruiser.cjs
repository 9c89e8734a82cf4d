// The import rules that keep the layout honest (docs/ARCHITECTURE.md, "Layout"):
// no cycles; a service imports only shared packages (the lab CLI may drive the
// reference mode); the virtio transport layer of L0 never reaches into the
// block device model. Run by `npm run deps` and in CI.
const REAL_GUEST_TEST = '^services/lab/src/e2e/real-guest[.]browser[.]test[.]ts$';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'An import cycle hides which module owns what.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'services-import-only-shared',
      severity: 'error',
      comment: 'Services talk over NATS; code they share lives in shared/.',
      from: { path: '^services/([^/]+)/', pathNot: REAL_GUEST_TEST },
      to: { path: '^services/([^/]+)/', pathNot: ['^services/$1/', '^services/reference/'] },
    },
    {
      name: 'services-import-only-shared',
      severity: 'error',
      comment:
        "One exception, for one test: the lab's real-guest console test plays QEMU against the " +
        "vhost-user back-end process with l0-hypervisor's published test front-end, and nothing else of it.",
      from: { path: REAL_GUEST_TEST },
      to: {
        path: '^services/',
        pathNot: [
          '^services/lab/',
          '^services/reference/',
          '^services/l0-hypervisor/dist/vhost-user/testing',
        ],
      },
    },
    {
      name: 'only-lab-uses-reference',
      severity: 'error',
      comment: 'The reference mode is driven by the lab CLI only.',
      from: { path: '^services/', pathNot: ['^services/lab/', '^services/reference/'] },
      to: { path: '^services/reference/' },
    },
    {
      name: 'shared-never-imports-services',
      severity: 'error',
      from: { path: '^shared/' },
      to: { path: '^services/' },
    },
    {
      name: 'l0-transport-apart-from-device-model',
      severity: 'error',
      comment: 'The queue processor and transports are generic; the block model plugs in.',
      from: { path: '^services/l0-hypervisor/src/virtio/' },
      to: { path: '^services/l0-hypervisor/src/blk/' },
    },
    {
      name: 'resolvable',
      severity: 'error',
      comment: 'Run after the build: a workspace import resolves to its dist/.',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    // A workspace import resolves to the package's dist/: keep that edge (so the
    // service rules see it) without walking the compiled files behind it.
    doNotFollow: { path: ['node_modules', '(^|/)dist/'] },
    exclude: { path: '(^|/)node_modules/' },
    tsPreCompilationDeps: true,
    combinedDependencies: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'types', 'default'],
      mainFields: ['types', 'main'],
    },
    tsConfig: { fileName: 'tsconfig.base.json' },
  },
};
