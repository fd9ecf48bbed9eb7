import { createHash } from 'node:crypto';

/**
 * A report states its own content hash, so the hash cannot cover the final bytes as they are.
 * Definition: the hash H is the SHA-256 (lower-case hex) of the report body with every
 * occurrence of H replaced by 64 zeros. To produce it, the report is rendered once with the
 * placeholder, hashed, and rendered again with H (rendering is deterministic, so only the hash
 * fields differ). To check it, replace H by the placeholder and hash: `verifyReportHash`.
 * Rendering twice, rather than substituting the placeholder in the draft, keeps user text that
 * happens to contain 64 zeros intact.
 */
export const HASH_PLACEHOLDER = '0'.repeat(64);

/** The sentence each report carries so a reader can check the hash without this code. */
export const HASH_DEFINITION = 'The content hash is the SHA-256 (hex) of this report with every occurrence of the hash replaced by 64 zeros.';

/** SHA-256 of UTF-8 text, as lower-case hex. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Renders a report with its own content hash in it; see HASH_PLACEHOLDER for the definition. */
export function sealReport(render: (hash: string) => string): { body: string; hash: string } {
  const draft = render(HASH_PLACEHOLDER);
  const hash = sha256Hex(draft);
  const body = render(hash);
  // Guards the definition: a renderer that alters or drops the hash it is given would break it.
  if (body.replaceAll(hash, HASH_PLACEHOLDER) !== draft) throw new Error('report renderer is not stable under hash substitution');
  return { body, hash };
}

/** Whether `hash` is the content hash of `body` by the definition above. */
export function verifyReportHash(body: string, hash: string): boolean {
  return /^[0-9a-f]{64}$/.test(hash) && sha256Hex(body.replaceAll(hash, HASH_PLACEHOLDER)) === hash;
}
