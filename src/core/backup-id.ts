/**
 * Backup ids: the start time in seconds, base 36, upper case (as pg_probackup names backups,
 * e.g. "T4LG2Y"). Sorting ids of equal length sorts by start time. Two backups of one instance
 * started within the same second get consecutive seconds, so ids stay unique and ordered.
 */
export function newBackupId(now: Date, taken: ReadonlySet<string>): string {
  let seconds = Math.floor(now.getTime() / 1000);
  for (;;) {
    const id = seconds.toString(36).toUpperCase();
    if (!taken.has(id)) return id;
    seconds++;
  }
}

const ID_PATTERN = /^[0-9A-Z]{1,16}$/;

export function isBackupId(text: string): boolean {
  return ID_PATTERN.test(text);
}
