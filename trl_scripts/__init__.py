"""TRL post-training scripts (SFT, DPO, LongCoT warm-up, GRPO with sandbox rewards); see docs/post_training.md."""
