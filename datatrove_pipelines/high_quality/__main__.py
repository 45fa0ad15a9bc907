"""``python -m datatrove_pipelines.high_quality``: see the package docstring."""

from datatrove_pipelines.high_quality import main

main()
