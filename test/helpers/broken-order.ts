/** Makes writing an order's `error` throw, as a bug would: a change ending the order has written other fields when it comes. */
export function breakErrorField(order: object): void {
  Object.defineProperty(order, 'error', {
    get: () => null,
    set: () => {
      throw new TypeError('broken on purpose');
    },
    enumerable: true,
    configurable: true,
  });
}

/** Lets the order's `error` be written again. */
export function mendErrorField(order: object): void {
  Object.defineProperty(order, 'error', { value: null, writable: true, enumerable: true, configurable: true });
}
