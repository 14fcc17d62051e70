import assert from 'node:assert/strict';
import { REDACTED, redactorFor } from '../../reconciler/secrets/redact.js';

describe('redactorFor', () => {
  it('replaces every occurrence of every value, longest first', () => {
    const redact = redactorFor(['hunter22', 'hunter22-extended', 'p4ss.w*rd']);
    assert.equal(
      redact('a=hunter22-extended b=hunter22 c=p4ss.w*rd d=hunter2'),
      `a=${REDACTED} b=${REDACTED} c=${REDACTED} d=hunter2`,
    );
  });

  it('leaves text alone when there is nothing to redact', () => {
    assert.equal(redactorFor([])('nothing here'), 'nothing here');
  });

  it('does not redact values too short to be told from ordinary text', () => {
    assert.equal(redactorFor(['1', 'ab'])('1 ab'), '1 ab');
  });
});
