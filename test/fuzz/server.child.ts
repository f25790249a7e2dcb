// `finch serve` as the fuzz corpus drives it: the services and the server of browser mode (as
// test/server/*.test.ts start them, without the renderer build), in a process of their own so
// that the test can sample its memory and see it abort or hang. Prints {"port", "token", "pid"}
// once listening; SIGTERM closes it. FINCH_HOME comes from the environment.
import { createServices } from '../../src-main/services/index.js';
import { startServer } from '../../src-main/server/index.js';

const services = createServices({ browserMode: true });
const srv = await startServer({ dispatcher: services.dispatcher, rendererDir: null });
console.log(JSON.stringify({ port: srv.port, token: srv.token, pid: process.pid }));
process.once('SIGTERM', () => {
  void srv.close().then(() => {
    services.close();
    process.exit(0);
  });
});
