"""(to be written: the alexnet family of the zoo)."""
