"""``python -m datatrove_pipelines.repo_context``: see the package docstring."""

from datatrove_pipelines.repo_context import main

main()
