// The metrics-e2e suite (test/metrics-e2e.test.ts) with the ebpf dataplane.
process.env['FAND_TEST_DATAPLANE'] = 'ebpf';
await import('./metrics-e2e.test.js');
