// The fuzz corpus (corpus.ts API_CASES, on the files of bad-files.ts) against a running `finch
// serve`, under the watchdog and beside the other client of served.ts: every bad file and call
// gets a clear answer within seconds, and the server stays up and answers others meanwhile.
import { test } from 'node:test';
import { tempDir } from '../helpers/fixtures.js';
import { makeBadFiles } from './bad-files.js';
import { API_CASES } from './corpus.js';
import { runCorpus } from './served.js';

test('fuzz corpus: every bad file and call gets a clear answer within seconds; other clients keep theirs; the server stays up within its memory bound', {
  skip: process.platform === 'win32' ? 'FIFOs, sockets and /dev/zero are POSIX' : false,
}, async (t) => {
  const root = tempDir('finch-fuzz-');
  const closeSockets = await makeBadFiles(root);
  try {
    await runCorpus(t, { label: 'fuzz corpus', cases: API_CASES, root, home: tempDir('finch-fuzz-home-') });
  } finally {
    closeSockets();
  }
});
