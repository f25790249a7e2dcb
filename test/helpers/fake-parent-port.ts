// Gives a Node child process Electron's utility-process side: `process.parentPort` with
// postMessage and 'message' events carrying `{ data }`, over the child's IPC channel. Loaded with
// --import by test/helpers/fake-electron.ts's utilityProcess.fork.
import { EventEmitter } from 'node:events';

class ParentPort extends EventEmitter {
  postMessage(message: unknown): void {
    process.send?.(message);
  }
}
const port = new ParentPort();
process.on('message', (data) => port.emit('message', { data, ports: [] }));
// A utility process lives until it exits or is killed; the open IPC channel keeps this one alive.
(process as unknown as { parentPort: ParentPort }).parentPort = port;
