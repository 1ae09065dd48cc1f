// Reliability and security end to end over IPIP fans with the ebpf dataplane: the suite of test/suites/hostile.ts.
import { hostileSuite } from './suites/hostile.js';

hostileSuite('ipip', 'ebpf');
