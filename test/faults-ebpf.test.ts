// The faults suite (test/faults.test.ts) with the ebpf dataplane.
process.env['FAND_TEST_DATAPLANE'] = 'ebpf';
await import('./faults.test.js');
