/**
 * Appends `items` to `target` one at a time. `target.push(...items)` passes every item as an
 * argument on the stack, which throws RangeError past some 100,000 of them: the ops of one
 * command that cancels a big workflow's orders, say.
 */
export function appendAll<T>(target: T[], items: readonly T[]): void {
  for (let i = 0; i < items.length; i++) target.push(items[i]!);
}
