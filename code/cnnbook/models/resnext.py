"""(to be written: the resnext family of the zoo)."""
