import { realpath } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { HubError } from '../shared/errors.ts';

/**
 * The realpath of an absolute path, or (for a path that does not exist yet) of its nearest existing
 * ancestor joined with the rest: where the path leads once `..` and symlinks are followed.
 */
export async function realLocation(absolute: string): Promise<string> {
  let existing = absolute;
  for (;;) {
    try {
      const real = await realpath(existing);
      const rest = relative(existing, absolute);
      return rest && !isAbsolute(rest) ? join(real, rest) : real;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException | undefined)?.code;
      const parent = dirname(existing);
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || parent === existing) throw new HubError('VALIDATION', `${absolute} cannot be resolved (${code ?? 'error'})`);
      existing = parent;
    }
  }
}
