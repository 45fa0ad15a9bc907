"""Code-related web data (Seed-Coder paper §3): WARC/WET/HTML pages, extraction that keeps code, the code-markup
rule and the fastText recall classifier, dedup, heuristics, an LLM quality score per website category,
decontamination. Commands: ``python -m datatrove_pipelines.web {train-recall,run,stand-in-judge}``."""
