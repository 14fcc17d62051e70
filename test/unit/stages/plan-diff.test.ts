/** The plan's diff of a created file is, byte for byte, what jsdiff prints for it. */
import assert from 'node:assert/strict';
import { createTwoFilesPatch } from 'diff';
import { creationPatch } from '../../../reconciler/stages/plan.js';

describe("the plan's diff of a created file", () => {
  it('is what jsdiff prints: trailing newline or not, blank lines, CRLF, lone CR, empty, spaces in the path', () => {
    const contents = ['', '\n', '\n\n', 'x', 'x\n', 'a\nb', 'a\nb\n', 'a\n\nb\n\n', 'a\r\nb\r\n', 'a\rb\n', 'trailing  \n', ' \t\n', '\\ No newline\n'];
    // And generated ones: short lines of letters, spaces, tabs and line ends.
    let seed = 7;
    const next = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
    for (let count = 0; count < 300; count++) {
      contents.push(Array.from({ length: Math.floor(next() * 12) }, () => 'ab \t\r\n\n'[Math.floor(next() * 7)]).join(''));
    }
    for (const path of ['/etc/caddy/Caddyfile', '/srv/my app/conf.d/x y.conf']) {
      for (const content of contents) {
        assert.equal(creationPatch(path, content), createTwoFilesPatch(`a${path}`, `b${path}`, '', content, '', '', { context: 3 }), JSON.stringify(content));
      }
    }
  });
});
