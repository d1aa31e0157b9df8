"""One module per CLI verb (see `unmask.cli`). Top-level imports: standard library only."""
