// The dataplane the shared end-to-end suites (e2e, hostile, faults, reload,
// multifan) run with. Each suite file runs with the userspace dataplane; its
// twin `*-ebpf.test.ts` sets FAND_TEST_DATAPLANE=ebpf and imports the same
// file, so both dataplanes pass one suite rather than copies of it.
// Lab.startFand passes the value as --dataplane.
export type TestDataplane = 'userspace' | 'ebpf';

export const DATAPLANE = (process.env['FAND_TEST_DATAPLANE'] ??= 'userspace') as TestDataplane;
if (DATAPLANE !== 'userspace' && DATAPLANE !== 'ebpf') throw new Error(`FAND_TEST_DATAPLANE=${String(DATAPLANE)}: the suites run with userspace or ebpf`);

