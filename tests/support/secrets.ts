/**
 * The master key of every test process (base64 of 33 fixed bytes): set as SECRETS_KEY for the whole run by the jest
 * global setup, so CLI and worker processes a test spawns open the secrets the test process sealed, and configured
 * in each test file's module registry by `jest-setup-secrets.ts`. A test about key sources passes its own.
 * (No imports here: the global setup loads this file and nothing else of the project.)
 */
export const TEST_SECRETS_KEY = 'dGVzdC1zZWNyZXRzLWtleS0wMTIzNDU2Nzg5YWJjZGVm';
