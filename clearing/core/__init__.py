"""The pure core: the spec's rules as functions of their inputs, with no I/O."""
