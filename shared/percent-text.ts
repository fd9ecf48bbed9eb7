/**
 * A percentage as text with `digits` decimals, never rounded up to 100 while below it: 1,999 of
 * 2,000 orders ended is not done, nor is one failure in 3,000 attempts a 100% success rate.
 */
export function percentText(value: number, digits = 0): string {
  const text = value.toFixed(digits);
  return value < 100 && Number(text) >= 100 ? `${(100 - 10 ** -digits).toFixed(digits)}%` : `${text}%`;
}
