"""Test helpers: a local HTTPS package index, a wheel builder, directory snapshots."""
