import BTreeModule from 'sorted-btree';

type BTreeClass = typeof BTreeModule.default;

/**
 * sorted-btree's B+ tree: a sorted map with O(log n) insert, delete and seek, for the indexes that
 * let a page of a list start at its cursor. A CommonJS module with the class as its `default`:
 * Node's import gives module.exports, whose `default` is the class; vitest and bundlers that
 * honour `__esModule` give the class itself.
 */
export const BTree: BTreeClass = (BTreeModule as { default?: BTreeClass }).default ?? (BTreeModule as unknown as BTreeClass);
