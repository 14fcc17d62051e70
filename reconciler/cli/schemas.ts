/**
 * `edge-reconciler schemas`: prints or writes the JSON Schemas of the desired-state files, for editors
 * (`# yaml-language-server: $schema=...`) and for the repo's own CI.
 */
import type { Command } from 'commander';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { allSchemas } from '../config/repo-schemas.js';

/** Registers the `schemas` command. */
export function registerSchemas(program: Command): void {
  program
    .command('schemas')
    .description('print the JSON Schemas of edge.yaml, hosts/*.yaml and roles/*/role.yaml, or write them to a dir')
    .option('--write <dir>', 'write <name>.schema.json files into this dir')
    .action(async (options: { write?: string }) => {
      const schemas = allSchemas();
      if (!options.write) {
        process.stdout.write(JSON.stringify(schemas, null, 2) + '\n');
        return;
      }
      await mkdir(options.write, { recursive: true });
      for (const [name, schema] of Object.entries(schemas)) {
        await writeFile(join(options.write, name), JSON.stringify(schema, null, 2) + '\n');
      }
      process.stdout.write(`wrote ${Object.keys(schemas).length} schemas to ${options.write}\n`);
    });
}
