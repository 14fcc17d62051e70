/**
 * The e2e harness's own error type, shared by the container (container.ts), its run-dir plumbing
 * (container-runs.ts) and the polling helper (wait.ts), so that none of them has to import another's module for it.
 */

/** A failure of the harness itself (not of the code under test), with the evidence in the message. */
export class ContainerError extends Error {
  override name = 'ContainerError';
}
