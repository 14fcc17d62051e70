/**
 * Renders a systemd-unit resource: one file at /etc/systemd/system/<name>, mode 0644 root:root, with the activation
 * it asks for (enable, start, the files whose change restarts it).
 */
import { declProblem, fileBase, withFinalNewline } from '../common.js';
import { RenderProblems, type RenderInput, type RenderedFile, type UnitIntent } from '../types.js';
import { environmentFiles, hasInstallSection } from './unit-file.js';

/** The spec fields of a systemd-unit resource after the schema check. */
export interface SystemdUnitSpec {
  template?: string;
  content?: string;
  enable?: boolean;
  start?: boolean;
  onStandby?: 'install' | 'run';
  restartOn?: string[];
}

/** Where unit files go. */
export const UNIT_DIR = '/etc/systemd/system';

/** The unit a resource name configures and whether it is a drop-in: `lod.service.d/x.conf` → lod.service. */
export function unitOfName(name: string): { unit: string; dropIn: boolean } {
  const dropIn = /^(.+)\.d\/[^/]+\.conf$/.exec(name);
  return dropIn ? { unit: dropIn[1] ?? name, dropIn: true } : { unit: name, dropIn: false };
}

/** True for a template unit (`foo@.service`), which is only ever run through its instances. */
export function isTemplateUnit(unit: string): boolean {
  return /@\.[a-z]+$/.test(unit);
}

/** Renders one systemd-unit resource into its file. */
export function renderSystemdUnit(input: RenderInput): RenderedFile[] {
  const { resource } = input;
  const spec = resource.spec as SystemdUnitSpec;
  const rendered = input.engine.render(resource, input.data, { allowSecrets: false });
  const content = withFinalNewline(rendered.text);
  return [
    {
      ...fileBase(input),
      owner: 'root',
      group: 'root',
      path: `${UNIT_DIR}/${resource.name}`,
      content,
      mode: 0o644,
      template: rendered.file,
      unit: unitIntent(input, spec, content),
    },
  ];
}

/** What activation this file asks for; see the README for the rules. */
function unitIntent(input: RenderInput, spec: SystemdUnitSpec, content: string): UnitIntent {
  const { unit, dropIn } = unitOfName(input.resource.name);
  const installable = hasInstallSection(content);
  if (spec.enable === true && !dropIn && !installable && !isTemplateUnit(unit)) {
    throw new RenderProblems([
      declProblem(
        input,
        'UNIT_ENABLE_WITHOUT_INSTALL',
        `${unit} has enable: true but no [Install] section, so systemctl enable has nothing to do; ` +
          'add [Install] (e.g. WantedBy=multi-user.target) or drop enable',
      ),
    ]);
  }
  const parked = input.host.standby && (spec.onStandby ?? 'install') === 'install';
  const decides = !dropIn && !isTemplateUnit(unit) && !parked;
  return {
    unit,
    dropIn,
    enable: decides && (spec.enable ?? installable),
    start: decides && (spec.start ?? true),
    environmentFiles: environmentFiles(content),
    restartOn: [...new Set(spec.restartOn ?? [])].sort(),
  };
}
