/**
 * Text a client wrote made safe to print: control characters (an escape sequence could retitle the
 * terminal, write the clipboard or redraw the screen) and bidirectional overrides become `?`, and
 * a line break or tab a space. What clients write (a workflow's query, an agent's note, a pause's
 * reason) reaches a terminal through here: the CLI's output and the hub's readable log alike.
 */
export function printable(text: string): string {
  return text.replace(/[\t\n\r]/g, ' ').replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, '?');
}
