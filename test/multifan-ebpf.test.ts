// The multifan suite (test/multifan.test.ts) with the ebpf dataplane.
process.env['FAND_TEST_DATAPLANE'] = 'ebpf';
await import('./multifan.test.js');
