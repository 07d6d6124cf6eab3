"""Training: the byte-level GPT, the demo corpus, checkpoints and the training loop."""
