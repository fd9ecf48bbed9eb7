/**
 * JSON.parse for text that may hold tokens (a token list, a config file, SWITCHBOARD_TOKENS). V8's
 * syntax errors quote the text around the fault (`Unexpected token 's', "sb_admin_Q…" is not valid
 * JSON`), and those messages reach stderr and logs; this one keeps the fault and drops the quote.
 * @example parseSecretJson(readFileSync(file, 'utf8'))
 */
export function parseSecretJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    // The quoted excerpt starts at the first double quote (the fault itself is in single quotes).
    const fault = (error as Error).message.replace(/(?:, )?(?:\.\.\.)?".*$/s, '');
    throw new SyntaxError(`${fault || 'Unexpected token'} (the text is not shown: it may hold a token)`);
  }
}
