/**
 * The JSON Schema of the host config (`/etc/edge-reconciler/config.yaml`). It is the single source for the loader
 * (ajv, which also fills the defaults), for `edge-reconciler init`'s commented default (every description and
 * default below ends up as a comment there) and for editors (`systemd/config.schema.json`, kept in step by a test).
 */
import { writeFile } from 'node:fs/promises';

const NAME = '^[a-z0-9][a-z0-9-]*$';
const ABSOLUTE = '^/';

const absolutePath = (description: string, example?: string) => ({
  type: 'string',
  pattern: ABSOLUTE,
  description,
  ...(example === undefined ? {} : { examples: [example] }),
});

/** Schema of one maintenance window. */
const maintenanceWindow = {
  type: 'object',
  required: ['action', 'cron'],
  properties: {
    action: {
      enum: ['allow', 'deny'],
      description: 'allow: applying may happen while the window is open; deny: applying never happens while it is open (deny wins).',
    },
    cron: {
      type: 'string',
      minLength: 1,
      description: 'When the window opens: five cron fields "<minute> <hour> <day of month> <month> <day of week>" in maintenance.timezone.',
    },
    durationMinutes: {
      type: 'integer',
      minimum: 1,
      maximum: 44640,
      description: 'How long each occurrence keeps the window open. Without it the window is open in the minutes the cron matches.',
    },
    description: { type: 'string', description: 'Shown in logs and status when this window decides.' },
  },
  additionalProperties: false,
} as const;

/** Schema of the `forge` section: commit statuses (and GitHub deployments) per host. */
const forgeSection = {
  type: 'object',
  default: {},
  description: 'The forge the agent posts a commit status to for every commit it attempts (context edge-reconciler/<host>), and whose statuses the waves read. Unset kind: no forge (waves then ask the peers).',
  properties: {
    kind: { enum: ['github', 'gitea'], description: 'github (github.com or GitHub Enterprise) or gitea.', examples: ['github'] },
    baseUrl: {
      type: 'string',
      pattern: '^https?://',
      description: 'The API root: https://api.github.com (the default for github), https://ghe.example.com/api/v3 for Enterprise, the Gitea server (its /api/v1 is added when missing).',
      examples: ['https://gitea.example.com'],
    },
    tokenFile: absolutePath('File holding a token allowed to write commit statuses (and deployments), mode 0600.', '/etc/edge-reconciler/forge-token'),
    owner: { type: 'string', minLength: 1, description: 'The repo\'s owner on the forge; default: taken from the repo URL.', examples: ['acme'] },
    repo: { type: 'string', minLength: 1, description: 'The repo\'s name on the forge; default: taken from the repo URL.', examples: ['desired-state'] },
    fleetUrl: { type: 'string', pattern: '^https?://', description: 'Where the statuses link to (target_url): the fleet page.', examples: ['http://100.64.0.21:9321/'] },
    deployments: { type: 'boolean', default: false, description: 'Also create a GitHub deployment per commit with the host as its environment (github only).' },
  },
  additionalProperties: false,
} as const;

/** Schema of the `waves` section: how the host honours edge.yaml's waves. */
const wavesSection = {
  type: 'object',
  default: {},
  description: 'Waves (edge.yaml): a host applies a new commit only once every host of the earlier waves runs it.',
  properties: {
    enabled: { type: 'boolean', default: true, description: 'Honour the waves of edge.yaml (reconcile --now --ignore-waves overrides them once).' },
    timeoutSeconds: { type: 'number', minimum: 0, default: 3600, description: 'How long the host waits for the earlier waves before it reports itself halted (0: no limit).' },
    recheckSeconds: { type: 'number', minimum: 1, default: 15, description: 'While waiting, ask the earlier waves again this often.' },
    peerPort: { type: 'integer', minimum: 1, maximum: 65535, default: 9321, description: 'The agents\' port on the peers\' addresses (hosts/*.yaml address), for their /status.' },
    peerScheme: { enum: ['http', 'https'], default: 'http', description: 'The scheme of the peers\' /status.' },
    peers: {
      type: 'object',
      default: {},
      additionalProperties: { type: 'string', pattern: '^https?://' },
      description: 'Base URLs of peers whose agent is not at scheme://address:peerPort, by host name.',
    },
  },
  additionalProperties: false,
} as const;

/** Schema of `/etc/edge-reconciler/config.yaml`. */
export const hostConfigSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://edge-reconciler.dev/schema/config.schema.json',
  title: '/etc/edge-reconciler/config.yaml',
  description: 'The host config of one edge-reconciler agent: where its desired state comes from and how it converges.',
  type: 'object',
  required: ['repo', 'host'],
  properties: {
    repo: {
      type: 'string',
      minLength: 1,
      description: 'The desired-state repo: an ssh or https git URL, or a path to a local repo.',
      examples: ['git@github.com:acme/desired-state.git'],
    },
    ref: {
      type: 'string',
      minLength: 1,
      pattern: '^[^\\s~^:?*\\[\\\\]+$',
      default: 'release',
      description: 'The branch to follow. Set either ref or tagPattern, not both.',
    },
    tagPattern: {
      type: 'string',
      minLength: 1,
      description: 'Follow tags instead of a branch: a glob such as "prod-*"; the agent applies the newest matching tag. Replaces ref.',
      examples: ['prod-*'],
    },
    path: {
      type: 'string',
      minLength: 1,
      pattern: '^(?![/-])(?!.*(^|/)\\.\\.?(/|$))[A-Za-z0-9._/-]+(?<!/)$',
      description: 'The folder of the repo that holds the desired state (edge.yaml, hosts/, roles/), as Flux\'s path; default: the repo\'s root.',
      examples: ['desired-state'],
    },
    host: {
      type: 'string',
      pattern: NAME,
      description: 'This host\'s name: the desired-state repo\'s hosts/<host>.yaml is what the agent applies.',
      examples: ['lod-prod'],
    },
    root: {
      ...absolutePath('Filesystem root the managed files are written under; anything but / is a sandbox.'),
      default: '/',
    },
    stateDir: {
      ...absolutePath('Where the agent keeps its git mirror, generations, journal, status and suspension.'),
      default: '/var/lib/edge-reconciler',
    },
    secretsDir: {
      ...absolutePath('Host-local secrets, one file per secret (mode 0600), for {{secret "NAME"}} in env templates.'),
      default: '/etc/edge-reconciler/secrets',
    },
    listen: {
      type: 'string',
      minLength: 1,
      default: '127.0.0.1:9321',
      description: 'host:port of /healthz, /status, /metrics and the webhook ([addr]:port for IPv6). Loopback or the Tailscale IP; 0.0.0.0 and :: need allowPublicListen.',
    },
    allowPublicListen: {
      type: 'boolean',
      default: false,
      description: 'Allow listen on every interface (0.0.0.0 or ::). Off: the agent never listens on a public interface by default.',
    },
    poll: {
      type: 'object',
      default: {},
      description: 'Polling the repo: the fallback when no webhook arrives.',
      properties: {
        enabled: { type: 'boolean', default: true, description: 'Poll the repo for new commits.' },
        intervalSeconds: { type: 'number', minimum: 5, default: 60, description: 'Seconds between polls.' },
        jitterSeconds: { type: 'number', minimum: 0, default: 10, description: 'Up to this many random seconds are added to each interval, so hosts do not poll in step. Must be less than intervalSeconds.' },
      },
      additionalProperties: false,
    },
    webhook: {
      type: 'object',
      default: {},
      description: 'Push webhooks from GitHub or Gitea (HMAC-SHA256 signed), served on listen.',
      properties: {
        enabled: { type: 'boolean', default: false, description: 'Accept push webhooks; needs secretFile.' },
        secretFile: absolutePath('File holding the webhook secret: must exist, be non-empty and not be readable by group or others (0600).', '/etc/edge-reconciler/secrets/.webhook-secret'),
      },
      additionalProperties: false,
    },
    auth: {
      type: 'object',
      default: {},
      description: 'Credentials to fetch the repo. Unset: the default ssh setup of the user the agent runs as.',
      properties: {
        sshKeyFile: absolutePath('Private ssh key for ssh URLs (mode 0600).', '/etc/edge-reconciler/deploy-key'),
        knownHostsFile: absolutePath('known_hosts file that pins the git server\'s host key.', '/etc/edge-reconciler/known_hosts'),
        tokenFile: absolutePath('File holding an https access token (mode 0600), for https URLs and the forge API.', '/etc/edge-reconciler/forge-token'),
      },
      additionalProperties: false,
    },
    apps: {
      type: 'object',
      default: {},
      description: 'How the repos of app releases (kind: app) are reached. URL rewrites and credentials live here, never in the desired-state repo.',
      properties: {
        insteadOf: {
          type: 'object',
          default: {},
          additionalProperties: { type: 'string', minLength: 1 },
          description: 'git\'s url.<base>.insteadOf: an app repo URL starting with a key is fetched from the value plus the rest (the longest key wins), e.g. a local mirror.',
          examples: [{ 'https://git.example.com/edge/': '/srv/git/edge/' }],
        },
        auth: {
          type: 'array',
          default: [],
          description: 'Credentials per URL prefix (matched after insteadOf, the longest prefix wins), as auth: for the desired-state repo.',
          items: {
            type: 'object',
            required: ['prefix'],
            properties: {
              prefix: { type: 'string', minLength: 1, description: 'App repo URLs starting with this use these credentials.' },
              sshKeyFile: absolutePath('Private ssh key for ssh URLs (mode 0600).'),
              knownHostsFile: absolutePath('known_hosts file that pins the git server\'s host key.'),
              tokenFile: absolutePath('File holding an https access token (mode 0600).'),
              tokenUser: { type: 'string', minLength: 1, description: 'User name sent with the token (default x-access-token).' },
            },
            additionalProperties: false,
          },
        },
        fetchTimeoutSeconds: { type: 'number', exclusiveMinimum: 0, default: 60, description: 'Deadline of one fetch from an app repo.' },
      },
      additionalProperties: false,
    },
    trust: {
      type: 'object',
      default: {},
      description: 'Which commits the agent accepts.',
      properties: {
        requireSignatures: { type: 'boolean', default: false, description: 'Refuse commits (or tags) without a valid signature; needs allowedSignersFile or gpgHome.' },
        allowedSignersFile: absolutePath('ssh allowed_signers file (git gpg.ssh.allowedSignersFile) for ssh-signed commits.', '/etc/edge-reconciler/allowed_signers'),
        gpgHome: absolutePath('GnuPG home holding the trusted public keys for gpg-signed commits.', '/etc/edge-reconciler/gnupg'),
        allowRewinds: { type: 'boolean', default: false, description: 'Accept a commit that does not descend from the last applied one (a force-push or rewind).' },
      },
      additionalProperties: false,
    },
    limits: {
      type: 'object',
      default: {},
      description: 'Caps on the desired-state tree the agent reads into memory; a revision over them is refused (TREE_TOO_LARGE) before it is read.',
      properties: {
        maxFileBytes: { type: 'integer', minimum: 1024, default: 16777216, description: 'The largest single file of the tree, in bytes (16 MiB).' },
        maxTreeBytes: { type: 'integer', minimum: 1024, default: 134217728, description: 'The largest tree, all its files together, in bytes (128 MiB).' },
      },
      additionalProperties: false,
    },
    drift: {
      type: 'object',
      default: {},
      description: 'Changes to managed files made behind the agent\'s back.',
      properties: {
        policy: { enum: ['heal', 'report'], default: 'heal', description: 'heal: put the file back at once; report: log it and show it in status and metrics only.' },
        watch: { type: 'boolean', default: true, description: 'Watch managed files and the secrets dir for changes (otherwise drift is found at the next reconcile).' },
      },
      additionalProperties: false,
    },
    deadmanSeconds: { type: 'integer', minimum: 10, default: 120, description: 'Seconds before a changed firewall reverts to the previous rules unless health passes.' },
    keepGenerations: { type: 'integer', minimum: 2, default: 10, description: 'How many generations to keep in the state dir (the newest good one is always kept).' },
    hookTimeoutSeconds: { type: 'number', exclusiveMinimum: 0, default: 60, description: 'Seconds a role hook may run before it is killed.' },
    maintenance: {
      type: 'object',
      default: {},
      description: 'When applying may happen. `reconcile --now` overrides the windows (not a suspension).',
      properties: {
        timezone: { type: 'string', minLength: 1, default: 'UTC', description: 'IANA time zone the window crons are read in, e.g. Europe/Berlin.' },
        windows: {
          type: 'array',
          default: [],
          items: maintenanceWindow,
          description: 'No windows: always allowed. With allow windows: only inside one. An open deny window always wins.',
          examples: [
            [
              { action: 'allow', cron: '* 2-4 * * 1-5', description: 'weekday nights 02:00-04:59' },
              { action: 'deny', cron: '0 12 * * 5', durationMinutes: 3600, description: 'freeze from friday 12:00 to monday 00:00' },
            ],
          ],
        },
      },
      additionalProperties: false,
    },
    forge: forgeSection,
    waves: wavesSection,
    fleet: {
      type: 'object',
      default: {},
      description: 'The fleet page (GET / on listen) and `status --fleet`: every host of the inventory, its peers\' /status read over the mesh (dialled as the waves dial them, else at the port of listen).',
      properties: {
        peerTimeoutSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 30, default: 2, description: 'Seconds a peer has to answer /status before it is shown as unreachable.' },
        refreshSeconds: { type: 'integer', minimum: 5, default: 30, description: 'The page reloads itself this often.' },
      },
      additionalProperties: false,
    },
    backoff: {
      type: 'object',
      default: {},
      description: 'Retrying after a transient failure (fetch, lock): the pause doubles from initialSeconds up to maxSeconds.',
      properties: {
        initialSeconds: { type: 'number', exclusiveMinimum: 0, default: 5, description: 'The first pause.' },
        maxSeconds: { type: 'number', exclusiveMinimum: 0, default: 600, description: 'The longest pause; at least initialSeconds.' },
      },
      additionalProperties: false,
    },
  },
  additionalProperties: false,
} as const;

/** Where the schema is kept for editors, relative to the project root (installed under /opt/edge-reconciler). */
export const CONFIG_SCHEMA_FILE = 'systemd/config.schema.json';

/** The schema as written to `systemd/config.schema.json`. */
export function configSchemaText(): string {
  return `${JSON.stringify(hostConfigSchema, null, 2)}\n`;
}

/** Writes the schema for editors (`npm run build && node -e "import('../dist/reconciler/config/host-config-schema.js').then((m) => m.writeConfigSchema())"`). */
export async function writeConfigSchema(path: string = CONFIG_SCHEMA_FILE): Promise<void> {
  await writeFile(path, configSchemaText());
}
