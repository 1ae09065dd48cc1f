// End to end over IPIP fans with the ebpf dataplane: the suite of test/suites/e2e.ts.
import { e2eSuite } from './suites/e2e.js';

e2eSuite('ipip', 'ebpf');
