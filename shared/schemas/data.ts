import * as z from 'zod';
import { AttemptRef, Id, Metadata, Text, Timestamp } from './common.ts';

/**
 * registered: not checked (a URI, or validation is off); valid: the file is there and matches;
 * missing: the file is not there; changed: its sha256 differs from the one recorded.
 */
export const DataStatus = z.enum(['registered', 'valid', 'missing', 'changed']);
export type DataStatus = z.infer<typeof DataStatus>;

/** Where data came from: outside the workflow, a work order's output, or derived from other references. */
export const DataSource = z.enum(['external', 'produced', 'derived']);
export type DataSource = z.infer<typeof DataSource>;

/** A sha256 digest as 64 lowercase hex digits. */
export const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 is 64 lowercase hex digits');

/**
 * Why a `file://` URI cannot name a file on the hub's machine, or null when it can (or is no
 * `file://` URI). The hub turns such a URI into a path with node's fileURLToPath, which throws
 * for a host, an encoded slash or bad percent-encoding; a query or fragment it would drop.
 */
export function fileUriProblem(path: string): string | null {
  if (!path.toLowerCase().startsWith('file://')) return null;
  let url: URL;
  try {
    url = new URL(path);
  } catch {
    return 'not a valid file:// URI';
  }
  if (url.hostname !== '') return 'a file:// URI names a file on the hub: no host but localhost (file:///path)';
  if (url.search !== '' || url.hash !== '') return 'a file:// URI cannot have a query or a fragment';
  if (/%2f|%5c/i.test(url.pathname)) return 'a file:// URI cannot encode / or \\ (%2F, %5C) in its path';
  let decoded: string;
  try {
    decoded = decodeURIComponent(url.pathname);
  } catch {
    return 'malformed percent-encoding in a file:// URI';
  }
  return decoded.includes('\0') ? 'paths cannot contain NUL' : null;
}

/** The longest path or URI a reference may record, in UTF-16 code units. */
const MAX_PATH_LENGTH = 2048;

/** A local path or a URI (s3://, https://, file:// of a local file). */
export const DataPath = z
  .string()
  .trim()
  .min(1)
  .max(MAX_PATH_LENGTH)
  .refine((path) => !path.includes('\0'), 'paths cannot contain NUL')
  .superRefine((path, ctx) => {
    const problem = fileUriProblem(path);
    if (problem) ctx.addIssue({ code: 'custom', message: problem, input: path });
  });

export const Tag = z.string().trim().min(1).max(100);
export const DataType = z.string().trim().min(1).max(100);

const URI = /^[a-z][a-z0-9+.-]*:\/\//i;

/** True when `path` is a URI rather than a local path (file:// URIs name local files). */
export function isRemoteUri(path: string): boolean {
  return URI.test(path) && !path.toLowerCase().startsWith('file://');
}

/** Who registered a reference and where its content came from. */
export const Provenance = z.object({
  /** The token name (never the secret) or subsystem that registered it, and its role. */
  registeredBy: z.object({ role: z.enum(['admin', 'agent', 'monitor', 'system']), name: z.string() }),
  /** Filled by the hub from the attempt when an agent registers data; never taken from the payload. */
  agentId: Id.nullable(),
  workOrderId: Id.nullable(),
  attempt: z.number().int().nullable(),
  source: DataSource,
  /** References this one was derived from. */
  derivedFrom: z.array(Id),
});
export type Provenance = z.infer<typeof Provenance>;

/** A previous version of a reference, kept when it is updated. */
export const DataVersion = z.object({
  version: z.number().int(),
  path: z.string(),
  size: z.number().int().nullable(),
  checksum: Sha256.nullable(),
  status: DataStatus,
  updatedAt: Timestamp,
  updatedBy: z.string(),
});
export type DataVersion = z.infer<typeof DataVersion>;

/** A data reference of a workflow (the Python package's DataInventoryManager entry). */
export const DataReference = z.object({
  id: Id,
  /** Absolute local path (when the hub validates data) or URI, as recorded. */
  path: z.string(),
  location: z.enum(['file', 'uri']),
  description: Text,
  dataType: z.string(),
  size: z.number().int().nonnegative().nullable(),
  checksum: Sha256.nullable(),
  tags: z.array(z.string()),
  metadata: z.record(z.string(), z.unknown()),
  status: DataStatus,
  /** 1 at registration, +1 with every data.update. */
  version: z.number().int().positive(),
  /** Previous versions, oldest first, bounded by the hub's `dataHistoryLimit`. */
  history: z.array(DataVersion),
  createdAt: Timestamp,
  updatedAt: Timestamp,
  updatedBy: z.string(),
  /** When the hub last looked at the file; null when it never did. */
  validatedAt: Timestamp.nullable(),
  provenance: Provenance,
});
export type DataReference = z.infer<typeof DataReference>;

/** Fields of a new reference. size and checksum may be declared for URIs; for local files the hub measures them. */
export const DataReferenceSpec = z.strictObject({
  id: Id.optional(),
  path: DataPath,
  description: Text.default(''),
  /** Defaults to the file extension (csv, parquet, …) or `unknown`. */
  dataType: DataType.optional(),
  size: z.number().int().nonnegative().optional(),
  checksum: Sha256.optional(),
  tags: z.array(Tag).max(50).default([]),
  metadata: Metadata.prefault({}),
  derivedFrom: z.array(Id).max(1000).default([]),
  /** Refuse (NOT_FOUND) instead of recording status `missing` when a local file is not there. */
  requireExists: z.boolean().default(false),
});
export type DataReferenceSpec = z.output<typeof DataReferenceSpec>;

export const RegisterDataInput = DataReferenceSpec.extend({ workflowId: Id });
export const RegisterDataManyInput = z.strictObject({ workflowId: Id, items: z.array(DataReferenceSpec).min(1).max(1000) });
/** An agent registers data produced by the attempt it holds; provenance comes from that attempt. */
export const AgentRegisterDataInput = DataReferenceSpec.extend(AttemptRef);

export const DataRef = z.strictObject({ workflowId: Id, dataId: Id });

/** A new version of a reference; fields left out keep their value. */
export const UpdateDataInput = z.strictObject({
  workflowId: Id,
  dataId: Id,
  path: DataPath.optional(),
  description: Text.optional(),
  dataType: DataType.optional(),
  size: z.number().int().nonnegative().optional(),
  checksum: Sha256.optional(),
  tags: z.array(Tag).max(50).optional(),
  metadata: Metadata.optional(),
  requireExists: z.boolean().default(false),
  /** Refuse with CONFLICT unless the reference is at this version (optimistic concurrency). */
  expectedVersion: z.number().int().positive().optional(),
});

/** One filter language for data.search and GET /api/workflows/:id/data. */
export const DataFilter = z.strictObject({
  workflowId: Id,
  dataType: DataType.optional(),
  /** References carrying all of these tags. */
  tags: z.array(Tag).max(50).optional(),
  /** Case-insensitive substring of the path or the description. */
  text: z.string().min(1).max(200).optional(),
  agentId: Id.optional(),
  workOrderId: Id.optional(),
  source: DataSource.optional(),
  status: DataStatus.optional(),
  /** createdAt ≥ createdAfter (ms since the epoch). */
  createdAfter: Timestamp.optional(),
  /** createdAt < createdBefore. */
  createdBefore: Timestamp.optional(),
  sort: z.enum(['createdAt', 'path', 'size']).default('createdAt'),
  order: z.enum(['asc', 'desc']).default('asc'),
  limit: z.number().int().min(1).max(1000).default(100),
  /**
   * nextCursor of the previous page, with the same filter and sort. Sorted by path, a cursor holds
   * a whole path: up to 6 bytes of JSON a character (\u0001), and the id, in base64url.
   */
  cursor: z
    .string()
    .max(Math.ceil(((MAX_PATH_LENGTH * 6 + 64 + 7) * 4) / 3))
    .optional(),
});
export type DataFilter = z.output<typeof DataFilter>;

/**
 * A page of search results. `total` counts every match when `totalExact`; otherwise it is a lower
 * bound (the matches the page saw from its cursor on). A page may be short, even empty, with a
 * `nextCursor`: only a null one is the end.
 */
export const DataPage = z.object({
  version: z.number().int(),
  items: z.array(DataReference),
  total: z.number().int(),
  totalExact: z.boolean(),
  nextCursor: z.string().nullable(),
});
