"""(to be written: the preact_resnet family of the zoo)."""
