"""(to be written: the googlenet family of the zoo)."""
