"""The `commons` command line: parses arguments, prints, and calls into node, governance, ledger."""
