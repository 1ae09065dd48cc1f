// The reload suite (test/reload.test.ts) with the ebpf dataplane.
process.env['FAND_TEST_DATAPLANE'] = 'ebpf';
await import('./reload.test.js');
