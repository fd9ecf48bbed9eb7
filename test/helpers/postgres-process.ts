/**
 * One PostgreSQL server for another process's tests (the Python SDK's cluster tests): prints
 * `{"url": …}` (a new database) once it accepts connections, and destroys the server when its
 * stdin closes or on SIGTERM. Run with `node --import tsx test/helpers/postgres-process.ts`.
 */
import { postgresSkipReason, startPostgres } from './postgres.ts';

const skip = postgresSkipReason();
if (skip) {
  process.stdout.write(JSON.stringify({ skip }) + '\n');
  process.exit(0);
}
const server = await startPostgres();
process.stdout.write(JSON.stringify({ url: await server.newDatabase() }) + '\n');
let ending: Promise<void> | undefined;
const end = () => (ending ??= server.destroy().finally(() => process.exit(0)));
process.stdin.on('end', end).resume();
process.on('SIGTERM', end);
