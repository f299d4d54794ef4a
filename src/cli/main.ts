// knn-build: build a Faiss index from local files or s3:// URLs without the server, or inspect an index file.
import { BUILD_USAGE, UsageError, buildCommand } from './build.js';
import { inspectFaissFile } from './inspect.js';

const USAGE = `knn-build <command>
  build    build an index (knn-build build --help)
  inspect  print an index file's structure: knn-build inspect FILE [--json]

${BUILD_USAGE}`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'build':
      return buildCommand(rest);
    case 'inspect': {
      const file = rest.find((a) => !a.startsWith('--'));
      if (!file) throw new UsageError('inspect needs a FILE');
      await inspectFaissFile(file, process.stdout, { json: rest.includes('--json') });
      return 0;
    }
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`knn-build: ${(e as Error).message}\n`);
  if (e instanceof UsageError) process.stderr.write('run knn-build --help for usage\n');
  process.exitCode = e instanceof UsageError ? 2 : 1;
}
