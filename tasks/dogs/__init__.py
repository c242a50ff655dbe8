"""Stanford Dogs (120 breeds): official-layout reader, zero-shot head from ImageNet, fine-tuning task."""
