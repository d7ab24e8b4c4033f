"""Test corpora built in code, so that no large fixture files are committed."""
