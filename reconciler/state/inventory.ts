/**
 * The inventory: what a generation manages on a host, file by file, with enough to plan deletions and their
 * activation (stop and disable a removed unit) without the repo at hand.
 */
import { digestOf } from '../cache/pack.js';
import type { ResourceKind } from '../model.js';
import type { OnChange, RenderedFile, UnitIntent } from '../../renderers/types.js';

/** One managed file of a generation. */
export interface InventoryEntry {
  path: string;
  kind: ResourceKind;
  resource: string;
  sha256: string;
  mode: number;
  owner: string;
  group: string;
  sensitive: boolean;
  unit?: UnitIntent;
  onChange?: OnChange;
  /** A symlink (an app's `current`): the hash is of its target text; mode and owner are not compared. */
  link?: boolean;
}

/** A managed file with its content: what a generation stores, so a rollback needs no git. */
export interface ManagedFile extends Omit<InventoryEntry, 'sha256'> {
  content: string;
}

/** The sha256 of a file's content, hex. */
export function sha256(content: string | Buffer): string {
  return digestOf(content);
}

const contentHashes = new WeakMap<object, string>();

/**
 * The sha256 of a rendered file's content, computed once per file object: validate, plan and apply all ask for it
 * (the files are never changed once rendered).
 */
export function contentHash(file: { readonly content: string }): string {
  let hash = contentHashes.get(file);
  if (hash === undefined) {
    hash = sha256(file.content);
    contentHashes.set(file, hash);
  }
  return hash;
}

/** The inventory of a set of rendered files, sorted by path. */
export function inventoryOf(files: readonly RenderedFile[]): InventoryEntry[] {
  return files
    .map((file) => ({
      path: file.path,
      kind: file.kind,
      resource: file.resource,
      sha256: contentHash(file),
      mode: file.mode,
      owner: file.owner,
      group: file.group,
      sensitive: file.sensitive,
      ...(file.unit ? { unit: file.unit } : {}),
      ...(file.onChange ? { onChange: file.onChange } : {}),
      ...(file.link ? { link: true } : {}),
    }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
