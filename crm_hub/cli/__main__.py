"""`python -m crm_hub.cli` runs the command line (used by tests and the benchmark)."""

from crm_hub.cli import main

main()
