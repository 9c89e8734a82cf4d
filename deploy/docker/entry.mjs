// One entry point for every nestlab image: NESTLAB_SERVICE (baked in by the
// build arg SERVICE, or set by compose for the shared air-gapped image) names
// the package to start. The lab image runs the CLI; with no arguments it runs
// `nestlab console` (pass e.g. `matrix --json` to run something else).
const service = process.env.NESTLAB_SERVICE ?? '';
const SERVERS = ['l0-hypervisor', 'xen', 'dom0-kernel', 'iommu'];

if (service === 'lab') {
  if (process.argv.length <= 2) process.argv.push('console');
  await import('../../services/lab/dist/cli.js');
} else if (SERVERS.includes(service)) {
  await import(`../../services/${service}/dist/server.js`);
} else {
  process.stderr.write(
    `NESTLAB_SERVICE: ${JSON.stringify(service)} is not one of lab, ${SERVERS.join(', ')}\n`,
  );
  process.exit(2);
}
