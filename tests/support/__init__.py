"""Test helpers, imported by the test modules (which never import one another): a local HTTPS
package index and its faults, a wheel builder, directory snapshots, the cache's contents,
the command line run in-process, Ctrl-C sent to a command mid-download,
`secinstall serve` in a child process, the real PEP 740 data
and tampered copies of it, and builders for the SBOM tests."""
