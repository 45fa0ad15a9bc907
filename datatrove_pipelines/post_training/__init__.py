"""Post-training data builders (facts §7): sandbox-verified SFT examples and on-policy DPO pairs.

``python -m datatrove_pipelines.sft_data`` and ``python -m datatrove_pipelines.dpo_data`` are the entry points; this
package holds their parts: seed problems (``seeds``), the generator/policy clients (``generation``) and the datatrove
steps (``steps``). Every execution goes through ``eval.code_reward`` (and so through ``eval.sandbox``).
"""
