// Reliability and security end to end over IPIP fans: the suite of test/suites/hostile.ts.
import { hostileSuite } from './suites/hostile.js';

hostileSuite('ipip');
