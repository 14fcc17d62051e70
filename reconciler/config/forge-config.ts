/**
 * The host config's `forge` section: the rules a schema cannot say (a kind needs a token file, Gitea needs its
 * URL, owner/repo come from the repo URL unless set), the token read from its private file, and where the API is.
 */
import { readFile } from 'node:fs/promises';
import type { Problem } from '../errors.js';
import type { YamlSource } from './yaml-source.js';

/** The forge's API root of github.com. */
export const GITHUB_API = 'https://api.github.com';

/** Where a configured forge's API is and which repo the statuses go to. */
export interface ForgeTarget {
  kind: 'github' | 'gitea';
  apiUrl: string;
  owner: string;
  repo: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `owner` and `repo` of a forge repo URL: `git@github.com:acme/desired-state.git`,
 * `https://gitea.example.com/acme/desired-state.git`, `ssh://git@host:2222/acme/desired-state`. Undefined for a
 * path or a URL without two path segments.
 */
export function ownerAndRepo(url: string): { owner: string; repo: string } | undefined {
  let path: string | undefined;
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/]+(\/.*)$/.exec(url);
  if (scheme) path = scheme[1];
  else if (!url.startsWith('/')) path = /^[^/:]+:(.+)$/.exec(url)?.[1];
  if (!path) return undefined;
  const segments = path.replace(/\.git\/?$/, '').split('/').filter((segment) => segment !== '');
  if (segments.length < 2) return undefined;
  return { owner: segments.at(-2) as string, repo: segments.at(-1) as string };
}

/** The API root of a forge section: GitHub's default, or Gitea's `/api/v1` under its URL. */
export function forgeApiUrl(kind: 'github' | 'gitea', baseUrl: string | undefined): string {
  const base = (baseUrl ?? GITHUB_API).replace(/\/+$/, '');
  return kind === 'gitea' && !/\/api\/v1$/.test(base) ? `${base}/api/v1` : base;
}

/** The forge target of a loaded config, or undefined without a forge. */
export function forgeTarget(config: { repo: string; forge: { kind?: 'github' | 'gitea'; baseUrl?: string; owner?: string; repo?: string } }): ForgeTarget | undefined {
  const { kind } = config.forge;
  if (!kind) return undefined;
  const derived = ownerAndRepo(config.repo);
  const owner = config.forge.owner ?? derived?.owner;
  const repo = config.forge.repo ?? derived?.repo;
  if (!owner || !repo) return undefined;
  return { kind, apiUrl: forgeApiUrl(kind, config.forge.baseUrl), owner, repo };
}

/** The problems of the `forge` section besides the schema's. */
export function forgeProblems(source: YamlSource, value: Record<string, unknown>): Problem[] {
  const problems: Problem[] = [];
  const at = (pointer: string, message: string) => {
    problems.push({ code: 'CONFIG_INVALID', file: source.file, line: source.lineOf(pointer), path: pointer, message });
  };
  const forge = isRecord(value.forge) ? value.forge : {};
  const kind = forge.kind;
  const given = Object.keys(forge).filter((key) => key !== 'deployments' && forge[key] !== undefined);
  if (kind === undefined) {
    if (given.length > 0 || forge.deployments === true) at('/forge', '"forge" needs "kind" (github or gitea) when any of its keys is set');
    return problems;
  }
  if (forge.tokenFile === undefined) at('/forge', `"forge.kind" ${String(kind)} needs "forge.tokenFile"`);
  if (kind === 'gitea' && forge.baseUrl === undefined) at('/forge', '"forge.kind" gitea needs "forge.baseUrl" (the Gitea server)');
  if (kind === 'gitea' && forge.deployments === true) at('/forge/deployments', '"forge.deployments" is for github: gitea has no deployments API');
  if ((forge.owner === undefined || forge.repo === undefined) && typeof value.repo === 'string' && !ownerAndRepo(value.repo)) {
    at('/forge', `cannot tell the forge's owner and repo from "repo" ${JSON.stringify(value.repo)}: set "forge.owner" and "forge.repo"`);
  }
  return problems;
}

/**
 * Reads the forge token (after fileProblems checked that the file is private); adds a problem when it cannot be
 * read or is empty. The token itself never appears in a problem.
 */
export async function forgeTokenOf(source: YamlSource, value: Record<string, unknown>, problems: Problem[]): Promise<string | undefined> {
  const forge = isRecord(value.forge) ? value.forge : {};
  if (typeof forge.kind !== 'string' || typeof forge.tokenFile !== 'string') return undefined;
  const file = forge.tokenFile;
  if (problems.some((problem) => problem.path === '/forge/tokenFile')) return undefined;
  const at = (message: string) => problems.push({ code: 'CONFIG_INVALID', file: source.file, line: source.lineOf('/forge/tokenFile'), path: '/forge/tokenFile', message });
  const token = await readFile(file, 'utf8').then(
    (text) => text.trim(),
    (error: NodeJS.ErrnoException) => {
      at(`cannot read "forge.tokenFile" ${file}: ${error.code ?? 'error'}`);
      return undefined;
    },
  );
  if (token === '') at(`"forge.tokenFile" ${file} is empty`);
  return token === '' ? undefined : token;
}
