// The environment the benchmarks time pgkeep in.
//
// Node reads and parses the certificate file NODE_EXTRA_CA_CERTS names every time it starts,
// before any script runs. The machines this project is developed on set it to the system's
// whole CA bundle (for their package-registry proxy), which costs each start of node about
// 40 ms (`node -e 0`: 63 ms with it, 22 ms without, median of 15): a tenth of a small PTRACK
// backup, charged to the machine rather than to pgkeep. A database host has no reason to set
// it, so the benchmarks remove it before they start anything (servers, archive_command, pgkeep,
// the peers), and say so in what they print.

let removed;

/** Removes NODE_EXTRA_CA_CERTS from this process's environment (inherited by all it starts); idempotent. */
export function withoutExtraCaCerts() {
  const file = process.env.NODE_EXTRA_CA_CERTS;
  if (file) {
    removed = file;
    delete process.env.NODE_EXTRA_CA_CERTS;
  }
}

/** The line that tells the reader, or undefined when the variable was not set. */
export function extraCaCertsNote() {
  return removed === undefined ? undefined : `NODE_EXTRA_CA_CERTS (${removed}) is set on this machine and was removed for the run: Node parses that file at every start, about 40 ms here`;
}
