"""(to be written: the resnet family of the zoo)."""
