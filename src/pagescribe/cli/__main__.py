"""``python -m pagescribe.cli``: the `pagescribe` command."""

from pagescribe.cli import main

main()
