"""Model files: find them (resolve), check them (validate), and make random-weight test pairs (synth)."""
