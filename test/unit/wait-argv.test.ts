// `--wait[=SECONDS]`: bin/run.js gives a bare --wait the value "forever" before oclif parses it.
import { describe, expect, it } from 'vitest';
import { normalizeWaitArgv, parseWaitSeconds } from '../../src/cli/wait-argv.js';

describe('normalizeWaitArgv', () => {
  it('gives a bare --wait the "forever" value when it is last or followed by an option', () => {
    expect(normalizeWaitArgv(['backup', '--instance', 'main', '--wait'])).toEqual(['backup', '--instance', 'main', '--wait=forever']);
    expect(normalizeWaitArgv(['delete', '--wait', '-i', 'X'])).toEqual(['delete', '--wait=forever', '-i', 'X']);
    expect(normalizeWaitArgv(['export', '--wait', '-'])).toEqual(['export', '--wait=forever', '-']);
    expect(normalizeWaitArgv(['restore', '--wait', '--instance', 'main'])).toEqual(['restore', '--wait=forever', '--instance', 'main']);
  });

  it('leaves --wait=SECONDS and --wait SECONDS as they are', () => {
    expect(normalizeWaitArgv(['merge', '--wait=30', '-i', 'X'])).toEqual(['merge', '--wait=30', '-i', 'X']);
    expect(normalizeWaitArgv(['validate', '--wait', '30', '--instance', 'm'])).toEqual(['validate', '--wait', '30', '--instance', 'm']);
    expect(normalizeWaitArgv(['validate', '--wait', '2.5'])).toEqual(['validate', '--wait', '2.5']);
  });

  it('treats a following word that is not seconds as the next argument, not the value', () => {
    expect(normalizeWaitArgv(['del-instance', '--wait', 'soon'])).toEqual(['del-instance', '--wait=forever', 'soon']);
  });

  it('leaves other commands, arguments after --, and the value of a --wait SECONDS alone', () => {
    expect(normalizeWaitArgv(['show', '--wait'])).toEqual(['show', '--wait']);
    expect(normalizeWaitArgv(['backup', '--', '--wait'])).toEqual(['backup', '--', '--wait']);
    expect(normalizeWaitArgv(['backup', '--wait', '5', '--wait'])).toEqual(['backup', '--wait', '5', '--wait=forever']);
    expect(normalizeWaitArgv([])).toEqual([]);
  });
});

describe('parseWaitSeconds', () => {
  it('reads seconds, and "forever" as no limit', () => {
    expect(parseWaitSeconds('60')).toBe(60);
    expect(parseWaitSeconds('0.5')).toBe(0.5);
    expect(parseWaitSeconds('forever')).toBe(Number.POSITIVE_INFINITY);
  });

  it('refuses anything else with INVALID_ARGUMENT', () => {
    for (const bad of ['', '-1', 'abc', '1e3', '5s']) {
      expect(() => parseWaitSeconds(bad), bad).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
  });
});
