// Gives a Node child process Electron's utility-process side: `process.parentPort` with
// postMessage and 'message' events carrying `{ data }`, over the child's IPC channel. Like
// Electron's, the port holds messages until the first 'message' listener starts it (the job's
// modules may take seconds to load). Loaded with --import by test/helpers/fake-electron.ts's
// utilityProcess.fork (plain JavaScript: it loads before any TypeScript loader the job asks for).
import { EventEmitter } from 'node:events';

class ParentPort extends EventEmitter {
  #held = [];
  #started = false;
  constructor() {
    super();
    process.on('message', (data) => {
      if (this.#started) this.emit('message', { data, ports: [] });
      else this.#held.push(data);
    });
    this.on('newListener', (event) => {
      if (event !== 'message' || this.#started) return;
      this.#started = true;
      setImmediate(() => { for (const data of this.#held.splice(0)) this.emit('message', { data, ports: [] }); });
    });
  }
  postMessage(message) {
    process.send?.(message);
  }
}
process.parentPort = new ParentPort();
// As in an Electron utility process (test/helpers/fake-electron.ts sets the same in its own).
process.versions.electron ??= '45.0.0-fake';
